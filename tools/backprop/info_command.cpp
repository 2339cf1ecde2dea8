// `backprop info FILE` (backprop/io/model_info.hpp) and `backprop report RUN_DIR` (backprop/io/report.hpp).
#include <backprop/error.hpp>
#include <backprop/io/model_info.hpp>
#include <backprop/io/report.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli.hpp"

namespace cli {

namespace bp = backprop;

int run_info(const InfoArgs& a) {
  const bp::io::ModelInfo info = bp::io::describe_file(a.file);
  std::cout << (a.json ? info.json() + "\n" : info.text());
  return kOk;
}

int run_report(const std::string& run_dir, bool quiet) {
  std::error_code ec;
  BP_CHECK(std::filesystem::is_directory(run_dir, ec), FileError, run_dir,
           ": not a run folder (no such directory)");
  bp::io::write_report(run_dir);
  if (!quiet) std::printf("wrote %s\n", (std::filesystem::path(run_dir) / "report.html").c_str());
  return kOk;
}

}  // namespace cli
