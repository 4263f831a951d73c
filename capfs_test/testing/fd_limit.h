// FdLimit: RLIMIT_NOFILE's soft limit lowered for the life of the object,
// for tests of descriptor-bounded walks. The limit in force before is put
// back on destruction.

#ifndef CAPFS_TEST_TESTING_FD_LIMIT_H_
#define CAPFS_TEST_TESTING_FD_LIMIT_H_

#include <sys/resource.h>

#include "gtest/gtest.h"

namespace capfs_test {

class FdLimit {
 public:
  explicit FdLimit(rlim_t soft) {
    EXPECT_EQ(getrlimit(RLIMIT_NOFILE, &saved_), 0);
    struct rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    EXPECT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  }
  FdLimit(const FdLimit&) = delete;
  FdLimit& operator=(const FdLimit&) = delete;
  ~FdLimit() { setrlimit(RLIMIT_NOFILE, &saved_); }

 private:
  struct rlimit saved_;
};

}  // namespace capfs_test

#endif  // CAPFS_TEST_TESTING_FD_LIMIT_H_
