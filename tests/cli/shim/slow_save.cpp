// An LD_PRELOAD library for the kill and signal tests of `backprop train` (tests/cli/kill_test.cpp,
// signal_test.cpp); nothing in backprop itself knows of it. A crash-safe save writes a temporary file (a name
// holding ".tmp-") and renames it into place; this library wraps rename() to widen that window from outside:
//   SLOW_SAVE_MS=N   sleeps N ms (1..10000) before each rename of a temporary file, so a SIGKILL at a random
//                    moment often lands inside a save;
//   HOLD_SAVE=PATH   holds the first rename of a temporary file into a "checkpoints" folder: creates
//   PATH.held,
//                    then waits until PATH.go exists, so a test can send a signal while that save is under
//                    way.
#include <dlfcn.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace {

using RenameFn = int (*)(const char*, const char*);

void sleep_ms(long ms) {
  timespec t{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0) {  // a signal (the test's SIGTERM) interrupts the sleep: sleep the rest
  }
}

bool held = false;

}  // namespace

extern "C" int rename(const char* from, const char* to) {
  static const RenameFn real = reinterpret_cast<RenameFn>(dlsym(RTLD_NEXT, "rename"));
  if (std::strstr(from, ".tmp-") != nullptr) {
    if (const char* ms = std::getenv("SLOW_SAVE_MS")) {
      const long v = std::strtol(ms, nullptr, 10);
      if (v > 0 && v <= 10000) sleep_ms(v);
    }
    const char* hold = std::getenv("HOLD_SAVE");
    if (hold != nullptr && !held && std::strstr(to, "/checkpoints/") != nullptr) {
      held = true;
      const std::string base(hold);
      const int fd = ::open((base + ".held").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) ::close(fd);
      while (::access((base + ".go").c_str(), F_OK) != 0) sleep_ms(1);
    }
  }
  return real(from, to);
}
