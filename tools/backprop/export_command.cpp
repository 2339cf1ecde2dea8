// `backprop export MODEL --onnx OUT.onnx`: a model file as an ONNX model (backprop/io/onnx.hpp).
#include <backprop/backprop.hpp>
#include <backprop/io/model_file.hpp>
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
  BP_CHECK(bp::io::input_exists(a.model, "MODEL"), FileError, a.model,
           ": no such file (expected a model file)");
  const bp::io::NamedTensors file = bp::io::load_safetensors(a.model);
  const auto format = file.metadata.find("format");
  BP_CHECK(
      format == file.metadata.end() || format->second != bp::io::kCheckpointFormat, ConfigError, a.model,
      ": is a checkpoint (training state), not a model; export the run's model.safetensors (written when "
      "training ends), or finish the run with `backprop train --resume` first");
  const bp::io::ModelFile model = bp::io::from_named(file, a.model, "optimizer.");
  const bp::nn::ModulePtr net = bp::io::build_module(model, a.model);
  BP_CHECK(!model.input_shape.empty(), FileError, a.model,
           ": the model does not record its input shape; an ONNX model needs it (save it with "
           "io::save_model(path, module, {.input_shape = ...}))");
  bp::io::OnnxOptions options{.force = a.force};
  if (model.has_preprocessing) options.preprocessing = model.preprocessing;
  bp::io::export_onnx(*net, a.onnx, model.input_shape, options);
  if (!a.quiet && !is_stream_output(a.onnx))
    std::printf(
        "wrote %s (ONNX opset %lld, input [batch, %s])\n", a.onnx.c_str(),
        static_cast<long long>(bp::io::kOnnxOpset),
        bp::to_string(model.input_shape).substr(1, bp::to_string(model.input_shape).size() - 2).c_str());
  return kOk;
}

}  // namespace cli
