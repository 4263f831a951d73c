"""Repositories capfs builds against, all local: nothing is downloaded.

A workspace that builds capfs on Debian calls `capfs_dependencies()` from its
WORKSPACE. A monorepo that already has its own @com_google_absl,
@com_google_googletest and @com_github_google_benchmark does not call it; the
labels capfs uses are the upstream ones, so the build is the same.
"""

load(":system_libs.bzl", "system_abseil", "system_benchmark", "system_googletest")

def capfs_dependencies():
    """Declares Abseil, GoogleTest and Google Benchmark from Debian's packages."""
    if not native.existing_rule("com_google_absl"):
        system_abseil(name = "com_google_absl")
    if not native.existing_rule("com_google_googletest"):
        system_googletest(name = "com_google_googletest")
    if not native.existing_rule("com_github_google_benchmark"):
        system_benchmark(name = "com_github_google_benchmark")
