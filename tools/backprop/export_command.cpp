// `backprop export MODEL --onnx OUT.onnx`: a model file as an ONNX model (backprop/io/onnx.hpp).
#include <backprop/error.hpp>
#include <backprop/io/onnx.hpp>
#include <backprop/io/run_folder.hpp>
#include <cstdio>

#include "cli.hpp"
#include "outputs.hpp"

namespace cli {

namespace bp = backprop;

int run_export(const ExportArgs& a) {
  // Refused before anything is read: the ONNX model written over the model file would destroy it.
  BP_CHECK(!bp::io::same_path(a.onnx, a.model), ConfigError, "--onnx ", a.onnx,
           ": is also the MODEL; choose another --onnx");
  check_output("--onnx", a.onnx, bp::io::FileKind::binary, "an ONNX model", a.force);
  const bp::io::ModelFile model = bp::io::export_model_file(a.model, a.onnx, {.force = a.force});
  const std::string shape = bp::to_string(model.input_shape);
  if (!a.quiet && !bp::io::is_stream(a.onnx))
    std::printf("wrote %s (ONNX opset %lld, input [batch, %s])\n", a.onnx.c_str(),
                static_cast<long long>(bp::io::kOnnxOpset), shape.substr(1, shape.size() - 2).c_str());
  return kOk;
}

}  // namespace cli
