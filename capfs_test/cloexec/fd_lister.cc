// Prints the descriptors this process was started with, one number a line:
// what a child spawned by a capfs user inherits. The cloexec test runs it.

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

int main() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return 1;
  int own = dirfd(d);
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd != own) printf("%d\n", fd);
  }
  closedir(d);
  return 0;
}
