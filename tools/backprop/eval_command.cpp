// `backprop eval` and `backprop predict`: a model file applied to data, with its stored preprocessing
// (backprop/train/saved_model.hpp).
#include <backprop/error.hpp>
#include <backprop/io/run_folder.hpp>
#include <backprop/train/saved_model.hpp>
#include <cstdio>
#include <iostream>

#include "cli.hpp"
#include "outputs.hpp"

namespace cli {

namespace bp = backprop;

namespace {

// Prints the header columns a command does not read (the target for predict, ids, notes, ...) as a note.
void note_ignored(const char* command, const std::string& path, const std::vector<std::string>& ignored,
                  const std::string& target) {
  if (ignored.empty()) return;
  std::string list;
  for (std::size_t i = 0; i < ignored.size() && i < 10; ++i)
    list += (list.empty() ? "'" : ", '") + ignored[i] + "'" + (ignored[i] == target ? " (the target)" : "");
  if (ignored.size() > 10) list += " and " + std::to_string(ignored.size() - 10) + " more";
  std::fprintf(stderr, "backprop %s: note: %s: ignoring %s %s (not features of the model)\n", command,
               path.c_str(), ignored.size() == 1 ? "column" : "columns", list.c_str());
}

}  // namespace

int run_eval(const EvalArgs& a) {
  const bp::io::LoadedModel model = bp::io::load_for_prediction(a.model, "`backprop eval`");
  const bp::data::ModelData read =
      bp::data::load_eval_data(model.model, a.data,
                               {.target = a.target,
                                .split = a.split == "train" ? bp::data::Split::train : bp::data::Split::test,
                                .limit = a.limit});
  note_ignored("eval", a.data, read.ignored_columns, "");
  const bp::train::ModelEvaluation e =
      bp::train::evaluate_model(model, read.data, {.model = a.model, .data = a.data});
  std::cout << (a.json ? e.json() + "\n" : e.text());
  return kOk;
}

int run_predict(const PredictArgs& a) {
  // Refused before anything is read: predictions written over the model or the input would destroy them.
  for (const auto& [flag, path] : {std::pair{"--model", a.model}, std::pair{"--input", a.input}})
    BP_CHECK(!bp::io::same_path(a.output, path), ConfigError, "--output ", a.output, ": is also the input ",
             flag, "; choose another --output");
  if (!a.output.empty())
    check_output("--output", a.output, bp::io::FileKind::text, "predictions (text)", a.force);
  const bp::io::LoadedModel model = bp::io::load_for_prediction(a.model, "`backprop predict`");
  const bp::data::ModelInputs inputs = bp::data::load_predict_inputs(model.model, a.input, a.limit);
  note_ignored("predict", a.input, inputs.ignored_columns, model.model.preprocessing.target);
  const bp::train::Predictions p = bp::train::predict_model(model, inputs.features);
  const std::string out = a.json ? p.json_lines() : p.text();
  if (a.output.empty())
    std::cout << out;
  else
    bp::io::write_file_atomic(a.output, out, {.force = a.force});
  return kOk;
}

}  // namespace cli
