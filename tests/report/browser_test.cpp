// The report in a real headless browser (Debian's chromium): the page loads with no console message, and its
// screenshot is not blank. Skipped only when /usr/bin/chromium is not installed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <backprop/io/report.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "png_decode.hpp"
#include "synthetic_run.hpp"
#include "util/require.hpp"

namespace fs = std::filesystem;
using namespace report_test;

namespace {

const char* kChromium = "/usr/bin/chromium";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct BrowserRun {
  int exit_code = -1;
  std::string log;         // chromium's stderr
  std::string screenshot;  // PNG bytes ("" if none was written)
};

// Loads `page` in headless chromium with a fresh profile and takes a 1200 x 2000 screenshot.
BrowserRun load_in_chromium(const fs::path& page, const fs::path& work) {
  fs::create_directories(work);
  const fs::path png = work / "shot.png", log = work / "chromium.log", profile = work / "profile";
  fs::remove(png);
  const std::string command = std::string("timeout 120 ") + kChromium +
                              " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                              " --disable-background-networking --disable-component-update --disable-sync"
                              " --user-data-dir='" +
                              profile.string() +
                              "' --enable-logging=stderr --v=0"
                              " --screenshot='" +
                              png.string() + "' --window-size=1200,2000 'file://" +
                              fs::absolute(page).string() + "' > /dev/null 2> '" + log.string() + "'";
  BrowserRun run;
  const int status = std::system(command.c_str());
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.log = slurp(log);
  if (fs::exists(png)) run.screenshot = slurp(png);
  fs::remove_all(profile);
  return run;
}

// Lines of the log that report something the page said on the console (errors, failed loads, warnings).
std::string console_lines(const std::string& log) {
  std::istringstream in(log);
  std::string out;
  for (std::string line; std::getline(in, line);)
    if (line.find(":CONSOLE") != std::string::npos) out += line + "\n";
  return out;
}

// Share of pixels that differ clearly from the most common colour (the page background), and colour count.
std::pair<double, std::size_t> ink(const Image& img) {
  std::map<std::uint32_t, std::size_t> colours;
  const auto c = static_cast<std::size_t>(img.channels);
  auto rgb = [&](std::size_t i) {
    const std::uint8_t* p = &img.pixels[i * c];
    return c >= 3 ? (std::uint32_t{p[0]} << 16 | std::uint32_t{p[1]} << 8 | p[2])
                  : std::uint32_t{p[0]} * 0x010101u;
  };
  const std::size_t n = static_cast<std::size_t>(img.width * img.height);
  for (std::size_t i = 0; i < n; ++i) ++colours[rgb(i)];
  const std::uint32_t background = std::max_element(colours.begin(), colours.end(), [](auto& a, auto& b) {
                                     return a.second < b.second;
                                   })->first;
  std::size_t differing = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t v = rgb(i);
    int diff = 0;
    for (int shift : {0, 8, 16})
      diff = std::max(diff, std::abs(static_cast<int>((v >> shift) & 0xff) -
                                     static_cast<int>((background >> shift) & 0xff)));
    differing += diff > 40;
  }
  return {static_cast<double>(differing) / static_cast<double>(n), colours.size()};
}

}  // namespace

TEST(ReportBrowser, LoadsWithoutConsoleMessagesAndIsNotBlank) {
  REQUIRE_INSTALLED(fs::exists(kChromium), "chromium", std::string(kChromium));
  const fs::path root = fs::path(::testing::TempDir()) / "backprop_report_browser";
  fs::remove_all(root);

  // The checks themselves: a page that logs an error is caught, and a blank page has no ink.
  fs::create_directories(root / "probe");
  std::ofstream(root / "probe" / "noisy.html")
      << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>probe</title></head><body><p>probe</p>"
         "<script>console.error('probe error')</script></body></html>\n";
  std::ofstream(root / "probe" / "blank.html")
      << "<!DOCTYPE html><html><head><meta "
         "charset=\"utf-8\"><title>blank</title></head><body></body></html>\n";
  const BrowserRun noisy = load_in_chromium(root / "probe" / "noisy.html", root / "noisy");
  ASSERT_EQ(noisy.exit_code, 0) << noisy.log;
  EXPECT_NE(console_lines(noisy.log).find("probe error"), std::string::npos)
      << "the console check cannot see console messages; log:\n"
      << noisy.log;
  const BrowserRun blank = load_in_chromium(root / "probe" / "blank.html", root / "blank");
  ASSERT_EQ(blank.exit_code, 0) << blank.log;
  const auto [blank_ink, blank_colours] = ink(decode_png(blank.screenshot));
  EXPECT_LT(blank_ink, 0.001);

  // The report.
  write_synthetic_run(root / "run");
  backprop::io::write_report((root / "run").string());
  const BrowserRun report = load_in_chromium(root / "run" / "report.html", root / "report");
  ASSERT_EQ(report.exit_code, 0) << report.log;
  EXPECT_EQ(console_lines(report.log), "");
  ASSERT_FALSE(report.screenshot.empty()) << report.log;
  const Image shot = decode_png(report.screenshot);
  EXPECT_EQ(shot.width, 1200);
  EXPECT_EQ(shot.height, 2000);
  const auto [report_ink, report_colours] = ink(shot);
  EXPECT_GT(report_ink, 0.02) << "the screenshot is (nearly) blank";
  EXPECT_GT(report_colours, blank_colours + 100) << "charts and heat map should bring many colours";
  EXPECT_GT(report.screenshot.size(), 4 * blank.screenshot.size());
  fs::remove_all(root);
}
