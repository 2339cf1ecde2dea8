// The one writer (write_file_atomic and the saves built on it) and the check every reader makes first
// (input_exists): links are followed, FIFOs and devices are streams, other special files are refused, a file
// of another kind is not replaced without force, and no reader waits on a FIFO.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <backprop/backprop.hpp>
#include <backprop/config.hpp>
#include <backprop/io.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/metrics.hpp>
#include <backprop/io/model_file.hpp>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "io/io_test_util.hpp"
#include "util/special_files.hpp"

namespace bp = backprop;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

using testutil::FifoReader;
using testutil::kind_of;
using testutil::make_fifo;
using testutil::null_device;

// Runs `f`; should it still be running after a generous limit (a reader blocked on a FIFO), opens the FIFO
// for writing and closes it again, which ends the blocked open with an empty stream, and reports the hang.
// Returns true when `f` returned without that help.
bool returns_without_waiting(const std::string& fifo, const std::function<void()>& f) {
  std::mutex m;
  std::condition_variable done_cv;
  bool done = false, rescued = false;
  std::thread watchdog([&] {
    std::unique_lock lock(m);
    if (done_cv.wait_for(lock, std::chrono::seconds(60), [&] { return done; })) return;
    rescued = true;
    lock.unlock();
    while (true) {  // the blocked reader is there, so a non-blocking open for writing succeeds
      const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) {
        ::close(fd);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  f();
  {
    std::lock_guard lock(m);
    done = true;
  }
  done_cv.notify_one();
  watchdog.join();
  return !rescued;
}

bp::io::NamedTensors small_model() {
  return {.tensors = {{"w", bp::from_vector(std::vector<float>{1.0F, 2.0F}, {2})}}, .metadata = {}};
}

}  // namespace

TEST(FileKind, IsJudgedFromTheFirstBytes) {
  using K = bp::io::FileKind;
  EXPECT_EQ(bp::io::file_kind(""), K::empty);
  std::string st(8, '\0');
  st[0] = 2;
  EXPECT_EQ(bp::io::file_kind(st + "{}"), K::safetensors);
  EXPECT_EQ(bp::io::file_kind("digraph backprop {\n"), K::dot);
  EXPECT_EQ(bp::io::file_kind("  strict graph {"), K::dot);
  EXPECT_EQ(bp::io::file_kind("<!DOCTYPE html>\n<html>"), K::html);
  EXPECT_EQ(bp::io::file_kind("setosa\t0.9981\n"), K::text);
  EXPECT_EQ(bp::io::file_kind("{\"row\": 0, \"class\": \"a\"}\n"), K::text);
  EXPECT_EQ(bp::io::file_kind("x1,x2,y\n1,2,3\n"), K::text);
  EXPECT_EQ(bp::io::file_kind("graphs,of,things\n"), K::text);  // "graph" only as a word
  EXPECT_EQ(bp::io::file_kind(std::string("\x1f\x8b\x08\0", 4)), K::binary);
  EXPECT_EQ(bp::io::file_kind(std::string("\0\0\x08\x03", 4)), K::binary);
}

TEST(Writer, FollowsASymbolicLinkAndKeepsIt) {
  iotest::ScratchDir dir;
  fs::create_directories(dir.path() / "elsewhere");
  const std::string target = dir.file("elsewhere/notes.txt");
  bp::io::write_file_atomic(target, "old text\n");
  fs::create_symlink("elsewhere/notes.txt", dir.path() / "link.txt");  // relative to the link's folder
  bp::io::write_file_atomic(dir.file("link.txt"), "new text\n");
  EXPECT_EQ(kind_of(dir.file("link.txt")), S_IFLNK);
  EXPECT_EQ(bp::io::read_file(target), "new text\n");
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"elsewhere", "link.txt"}));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path() / "elsewhere"), fs::directory_iterator{}), 1);

  // A dangling link: the target is created, the link stays.
  fs::create_symlink("model.safetensors", dir.path() / "latest.safetensors");
  bp::io::save_safetensors(dir.file("latest.safetensors"), small_model());
  EXPECT_EQ(kind_of(dir.file("latest.safetensors")), S_IFLNK);
  EXPECT_EQ(bp::io::load_safetensors(dir.file("model.safetensors")).tensors.size(), 1u);
}

TEST(Writer, WritesAFifoAsAStream) {
  iotest::ScratchDir dir;
  const std::string fifo = dir.file("out.fifo");
  make_fifo(fifo);
  const FifoReader reader(fifo);
  ASSERT_GE(reader.fd, 0) << std::strerror(errno);
  bp::io::write_file_atomic(fifo, "through the pipe\n");
  EXPECT_EQ(reader.read_all(), "through the pipe\n");
  EXPECT_EQ(kind_of(fifo), S_IFIFO);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.fifo"});
}

TEST(Writer, WritesACharacterDeviceAndStandardOutputAsStreams) {
  iotest::ScratchDir dir;
  const std::string device = null_device(dir.path().string());
  if (device.empty()) GTEST_SKIP() << "no character device to write to";
  bp::io::write_file_atomic(device, "discarded");
  EXPECT_EQ(kind_of(device), S_IFCHR);
  fs::create_symlink(device, dir.path() / "sink");
  bp::io::save_safetensors(dir.file("sink"), small_model());
  EXPECT_EQ(kind_of(dir.file("sink")), S_IFLNK);
  EXPECT_EQ(kind_of(device), S_IFCHR);

  ::testing::internal::CaptureStdout();
  bp::io::write_file_atomic("-", "to standard output\n");
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "to standard output\n");
}

TEST(Writer, AStreamWhoseReaderWentAwayIsAnErrorNotASignal) {
  int ends[2];
  ASSERT_EQ(::pipe(ends), 0);
  ::close(ends[0]);  // nobody will read
  const int saved_stdout = ::dup(STDOUT_FILENO);
  ASSERT_GE(saved_stdout, 0);
  ::dup2(ends[1], STDOUT_FILENO);
  ::close(ends[1]);
  std::string message;
  try {
    bp::io::write_file_atomic("-", "lost\n");
  } catch (const bp::FileError& e) {
    message = e.what();
  }
  ::dup2(saved_stdout, STDOUT_FILENO);
  ::close(saved_stdout);
  EXPECT_THAT(message, HasSubstr("cannot write to '-': Broken pipe"));  // and this process is still here
}

TEST(Writer, RefusesADirectoryOrASocket) {
  iotest::ScratchDir dir;
  fs::create_directories(dir.path() / "folder");
  try {
    bp::io::write_file_atomic(dir.file("folder"), "x");
    FAIL() << "wrote over a directory";
  } catch (const bp::FileError& e) {
    EXPECT_THAT(e.what(), HasSubstr("'" + dir.file("folder") + "' is a directory"));
  }
  EXPECT_EQ(kind_of(dir.file("folder")), S_IFDIR);

  const std::string socket_path = dir.file("sock");
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(socket_path.size(), sizeof addr.sun_path);
  std::strcpy(addr.sun_path, socket_path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  EXPECT_THROW(
      {
        try {
          bp::io::save_safetensors(socket_path, small_model());
        } catch (const bp::FileError& e) {
          EXPECT_THAT(e.what(), HasSubstr("is a socket"));
          throw;
        }
      },
      bp::FileError);
  ::close(fd);
  EXPECT_EQ(kind_of(socket_path), S_IFSOCK);
}

TEST(Writer, DoesNotReplaceAFileOfAnotherKindUnlessForced) {
  iotest::ScratchDir dir;
  const std::string model = dir.file("model.safetensors");
  bp::io::save_safetensors(model, small_model());
  const std::string before = bp::io::read_file(model);
  try {
    bp::io::write_file_atomic(model, "digraph g { a -> b }\n");
    FAIL() << "replaced a model with DOT text";
  } catch (const bp::FileError& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("holds a safetensors model; refusing to replace it with Graphviz DOT text"));
  }
  EXPECT_EQ(bp::io::read_file(model), before);
  EXPECT_EQ(bp::io::replaced_kind(model, bp::io::FileKind::text), bp::io::FileKind::safetensors);
  EXPECT_EQ(bp::io::replaced_kind(model, bp::io::FileKind::safetensors), std::nullopt);

  // A model over text, and text over an IDX file, are refused the same way.
  const std::string notes = dir.file("notes.txt");
  bp::io::write_file_atomic(notes, "remember this\n");
  EXPECT_THROW(bp::io::save_safetensors(notes, small_model()), bp::FileError);
  EXPECT_EQ(bp::io::read_file(notes), "remember this\n");
  const std::string idx = dir.file("images-idx3-ubyte");
  bp::io::write_file_atomic(idx, std::string("\0\0\x08\x03", 4), {.force = true});
  EXPECT_THROW(bp::io::write_file_atomic(idx, "predictions\n"), bp::FileError);

  // Same kind, an empty file, or force: replaced.
  bp::io::save_safetensors(model, small_model());
  bp::io::write_file_atomic(notes, "");
  bp::io::save_safetensors(notes, small_model());
  bp::io::write_file_atomic(model, "digraph g { a -> b }\n", {.force = true});
  EXPECT_EQ(bp::io::read_file(model), "digraph g { a -> b }\n");
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"images-idx3-ubyte", "model.safetensors", "notes.txt"}));
}

TEST(Writer, TheMetricsLogAppliesTheSameChecks) {
  iotest::ScratchDir dir;
  const std::string model = dir.file("metrics.jsonl");
  bp::io::save_safetensors(model, small_model());
  const std::string before = bp::io::read_file(model);
  EXPECT_THROW(bp::io::MetricsWriter(model, false), bp::FileError);
  EXPECT_THROW(bp::io::MetricsWriter(model, true), bp::FileError);
  EXPECT_EQ(bp::io::read_file(model), before);
  const std::string fifo = dir.file("fifo.jsonl");
  make_fifo(fifo);
  try {
    bp::io::MetricsWriter log(fifo, false);
    FAIL() << "opened a FIFO as the metrics log";
  } catch (const bp::FileError& e) {
    EXPECT_THAT(e.what(), HasSubstr("is a FIFO, not a regular file"));
  }
  EXPECT_EQ(kind_of(fifo), S_IFIFO);
  fs::create_symlink("real.jsonl", dir.path() / "link.jsonl");
  {
    bp::io::MetricsWriter log(dir.file("link.jsonl"), true);
    log.line("{\"type\": \"note\"}");
  }
  EXPECT_EQ(kind_of(dir.file("link.jsonl")), S_IFLNK);
  EXPECT_EQ(bp::io::read_file(dir.file("real.jsonl")), "{\"type\": \"note\"}\n");
}

TEST(Reader, ChecksForARegularFileBeforeOpening) {
  iotest::ScratchDir dir;
  const std::string fifo = dir.file("model.safetensors");
  make_fifo(fifo);
  EXPECT_FALSE(bp::io::input_exists(dir.file("missing"), "info"));
  bp::io::write_file_atomic(dir.file("plain.txt"), "x");
  EXPECT_TRUE(bp::io::input_exists(dir.file("plain.txt"), "info"));
  try {
    bp::io::input_exists(fifo, "--model");
    ADD_FAILURE() << "a FIFO passed";
  } catch (const bp::FileError& e) {
    EXPECT_STREQ(e.what(), ("--model: '" + fifo + "' is a FIFO, not a regular file").c_str());
  }
  EXPECT_THROW(bp::io::input_exists(dir.path().string(), "info"), bp::FileError);

  // Each reader of the library, given the FIFO, reports it instead of waiting for a writer.
  const std::vector<std::pair<std::string, std::function<void()>>> readers = {
      {"load_safetensors", [&] { bp::io::load_safetensors(fifo); }},
      {"read_file", [&] { bp::io::read_file(fifo); }},
      {"load_model", [&] { bp::io::load_model(fifo); }},
      {"resolve_checkpoint", [&] { bp::io::resolve_checkpoint(fifo); }},
      {"read_metrics", [&] { bp::io::read_metrics(fifo); }},
      {"load_toml", [&] { bp::config::load_toml(fifo); }},
      {"read_csv", [&] { bp::data::read_csv(fifo, {}); }},
      {"read_idx", [&] { bp::data::read_idx(fifo); }},
  };
  for (const auto& [name, read] : readers) {
    std::string message;
    const bool prompt = returns_without_waiting(fifo, [&] {
      try {
        read();
      } catch (const bp::Error& e) {
        message = e.what();
      }
    });
    EXPECT_TRUE(prompt) << name << " waited on the FIFO";
    EXPECT_THAT(message, HasSubstr("is a FIFO, not a regular file")) << name;
  }
  EXPECT_EQ(kind_of(fifo), S_IFIFO);
}
