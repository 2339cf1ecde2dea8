// `backprop`: the command line. Parses flags with CLI11 into the argument structs of cli.hpp, runs the
// subcommand, and turns exceptions into messages and exit codes (kFooter lists them).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <backprop/config.hpp>
#include <backprop/error.hpp>
#include <backprop/version.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <type_traits>

#include "cli.hpp"
#include "parallel.hpp"

namespace {

namespace bp = backprop;

const char* const kFooter =
    "Exit codes: 0 success, 1 internal error, 2 usage or configuration error, 3 data or model file error,\n"
    "4 training diverged, 5 out of memory (the message names the bytes), 130 / 143 interrupted by SIGINT /\n"
    "SIGTERM (a checkpoint is saved for --resume).\n"
    "Documentation: docs/cli.md";

// Config keys as flags: each is read as text and checked by bp::config::set, so a flag and a TOML key give
// the same message for the same mistake.
struct ConfigFlags {
  struct Entry {
    const bp::config::KeyInfo* key;
    std::string text;
    bool on = false, off = false;  // booleans: --flag / --no-flag
    CLI::Option* option = nullptr;
    CLI::Option* negation = nullptr;
  };
  std::vector<std::unique_ptr<Entry>> entries;

  void add_to(CLI::App& app) {
    const bp::config::Config defaults;
    for (const bp::config::KeyInfo& k : bp::config::keys()) {
      auto e = std::make_unique<Entry>();
      e->key = &k;
      const std::string group = "Configuration [" + k.key.substr(0, k.key.find('.')) + "]";
      const std::string def = bp::config::get(defaults, k.key);
      if (k.type == "boolean") {
        e->option =
            app.add_flag(k.flag, e->on, k.help + " (default " + def + "; key " + k.key + ")")->group(group);
        e->negation =
            app.add_flag("--no-" + k.flag.substr(2), e->off, "turn " + k.flag + " off")->group(group);
      } else {
        std::string type = k.type == "number"                ? "NUMBER"
                           : k.type == "integer"             ? "N"
                           : k.type == "list of integers"    ? "N,N,..."
                           : k.type == "integer or \"full\"" ? "N|full"
                                                             : "TEXT";
        if (!k.choices.empty()) {
          type.clear();
          for (const std::string& c : k.choices) type.append(type.empty() ? "" : "|").append(c);
        }
        e->option = app.add_option(k.flag, e->text, k.help + " (default " + def + "; key " + k.key + ")")
                        ->type_name(type)
                        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
                        ->group(group);
      }
      entries.push_back(std::move(e));
    }
  }

  // The keys set on `app`'s command line. Of a boolean's --flag and --no-flag, the one given last wins.
  std::vector<cli::Override> given(const CLI::App& app) const {
    const std::vector<CLI::Option*>& order = app.parse_order();
    auto last = [&](const CLI::Option* o) {
      const auto it = std::find(order.rbegin(), order.rend(), o);
      return it == order.rend() ? std::ptrdiff_t{-1} : order.rend() - it;
    };
    std::vector<cli::Override> out;
    for (const auto& e : entries) {
      if (e->negation && last(e->negation) > last(e->option))
        out.push_back({e->key->key, "false", "--no-" + e->key->flag.substr(2)});
      else if (e->option->count() > 0)
        out.push_back({e->key->key, e->key->type == "boolean" ? "true" : e->text, e->key->flag});
    }
    return out;
  }
};

// The value flags of the other commands (eval --limit, explain --seed, ...): read as text, then checked by
// the library's table (bp::config::command_flags) with the same rule and message form as train's keys.
struct CommandFlags {
  struct Entry {
    const CLI::App* app;
    CLI::Option* option;
    std::string text;
    std::function<void(const std::string&)> store;
  };
  std::vector<std::unique_ptr<Entry>> entries;

  template <class T>
  void add(CLI::App& app, const std::string& flag, T& target, const std::string& type_name) {
    const std::string command = app.get_name();
    const bp::config::CommandFlag* info = nullptr;
    for (const bp::config::CommandFlag& f : bp::config::command_flags())
      if (f.command == command && f.flag == flag) info = &f;
    if (info == nullptr)  // a bug: every flag added here has a row in the table
      throw std::logic_error(command + " " + flag + " is not in the command flag table");
    auto e = std::make_unique<Entry>();
    e->app = &app;
    e->option = app.add_option(flag, e->text, info->help + "; " + info->expects)->type_name(type_name);
    e->store = [command, flag, &target](const std::string& text) {
      if constexpr (std::is_same_v<T, std::string>)
        target = bp::config::flag_text(command, flag, text);
      else if constexpr (std::is_floating_point_v<T>)
        target = bp::config::flag_number(command, flag, text);
      else  // the table's range fits T
        target = static_cast<T>(bp::config::flag_integer(command, flag, text));
    };
    entries.push_back(std::move(e));
  }

  // Stores the flags given to `app`; throws ConfigError for a value out of range.
  void apply(const CLI::App& app) const {
    for (const auto& e : entries)
      if (e->app == &app && e->option->count() > 0) e->store(e->text);
  }
};

// Every long flag of a subcommand, for "did you mean".
std::vector<std::string> flags_of(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* o : app.get_options())
    for (const std::string& n : o->get_lnames()) names.push_back("--" + n);
  return names;
}

// Arguments CLI11 could not place: an unknown flag (with the closest known one) or a stray value.
void check_leftovers(const CLI::App& sub) {
  const std::vector<std::string> rest = sub.remaining();
  if (rest.empty()) return;
  for (const std::string& arg : rest) {
    if (arg.rfind("-", 0) != 0) continue;
    const std::string flag = arg.substr(0, arg.find('='));
    const std::string near = bp::config::closest(flag, flags_of(sub));
    throw bp::ConfigError("unknown flag " + flag + (near.empty() ? "" : "; did you mean " + near + "?") +
                          " (see backprop " + sub.get_name() + " --help)");
  }
  throw bp::ConfigError("unexpected argument '" + rest.front() + "' (see backprop " + sub.get_name() +
                        " --help)");
}

// The subcommand called `name`, or nullptr.
const CLI::App* command_named(const std::string& name, const CLI::App& app) {
  for (const CLI::App* s : app.get_subcommands({}))
    if (s->get_name() == name) return s;
  return nullptr;
}

// "unknown command 'WORD'; did you mean 'NEAR'? (commands: train, eval, ...)".
std::string unknown_command(const std::string& word, const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* s : app.get_subcommands({})) names.push_back(s->get_name());
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  const std::string near = bp::config::closest(word, names);
  return "unknown command '" + word + "'" + (near.empty() ? "" : "; did you mean '" + near + "'?") +
         " (commands: " + list + ")";
}

// Whether an exception is of type E.
template <class E>
bool is(const std::exception& e) {
  return dynamic_cast<const E*>(&e) != nullptr;
}

// The library's errors as the tool reports them: the first row whose type matches gives the message prefix
// and the exit code (cli.hpp); any other exception is an internal error.
struct ErrorRow {
  bool (*matches)(const std::exception&);
  const char* prefix;
  int code;
};
const ErrorRow kErrors[] = {
    {is<bp::OutOfMemoryError>, "error: ", cli::kOutOfMemory},
    {is<bp::DivergedError>, "", cli::kDiverged},
    {is<bp::ConfigError>, "error: ", cli::kUsage},
    {is<bp::ValueError>, "error: ", cli::kUsage},
    {is<bp::FileError>, "error: ", cli::kData},
    {is<bp::ShapeError>, "error: ", cli::kData},
    {is<bp::DTypeError>, "error: ", cli::kData},
    {is<bp::IndexError>, "error: ", cli::kData},
};

// What a command printed must reach its reader: standard output that cannot be written (a full disk,
// /dev/full) is an error (exit 3), never a cut-off result with exit 0.
int written(int code) {
  std::cout.flush();
  const bool ok = std::cout.good() && std::fflush(stdout) == 0 && !std::ferror(stdout);
  BP_CHECK(ok, FileError, "cannot write standard output: ", std::strerror(errno));
  return code;
}

// Prints the error and returns its exit code; under mpirun with several ranks, ends the whole job instead
// (parallel.hpp), since the other ranks may be waiting for this one in a collective.
int fail(const std::string& command, const char* kind, const char* what, int code) {
  if (const cli::Parallel* mpi = cli::Parallel::current(); mpi != nullptr && mpi->ranks() > 1)
    mpi->fail(command, kind, what, code);
  std::fprintf(stderr, "backprop%s%s: %s%s\n", command.empty() ? "" : " ", command.c_str(), kind, what);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // MPI starts only when mpirun launched this process (parallel.hpp); it ends when main returns.
  std::unique_ptr<cli::Parallel> mpi;
  try {
    mpi = std::make_unique<cli::Parallel>(argc, argv);
  } catch (const std::exception& e) {
    return fail("", "error: cannot start MPI: ", e.what(), cli::kInternal);
  }
  CLI::App app{"backprop: train neural networks by backpropagation, evaluate them, and look inside.",
               "backprop"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("backprop ") + bp::version);

  // train
  cli::TrainArgs train_args;
  ConfigFlags config_flags;
  CLI::App* train = app.add_subcommand(
      "train",
      "Train a network. With no arguments: 784-256-128-10 ReLU with dropout 0.2 on Fashion-MNIST, Adam with "
      "a "
      "cosine schedule, 30 epochs, writing a run folder (model.safetensors, metrics.jsonl, config.toml, "
      "summary.json, report.html).");
  train
      ->add_option("--config", train_args.config_file,
                   "read the configuration from a TOML file; flags override it")
      ->type_name("FILE");
  train->add_flag("--print-config", train_args.print_config,
                  "print the effective configuration as TOML and exit");
  train->add_option("--out", train_args.out, "the run folder (default runs/YYYYMMDD-HHMMSS)")
      ->type_name("DIR");
  train
      ->add_option(
          "--resume", train_args.resume,
          "continue a run from its latest checkpoint (a run folder, its checkpoints/ or a checkpoint file)")
      ->type_name("RUN_DIR|CHECKPOINT");
  train->add_flag("--overwrite", train_args.overwrite,
                  "replace the run already in --out DIR, once the new run has finished (until then it writes "
                  "to DIR.new-PID/ and DIR keeps the old run)");
  train->add_flag("-q,--quiet", train_args.quiet, "print nothing but errors");
  train->add_flag("--json", train_args.json, "print a JSON summary on stdout instead of text");
  config_flags.add_to(*train);

  CommandFlags command_flags;  // the value flags of eval, predict and explain

  // eval
  cli::EvalArgs eval_args;
  CLI::App* eval =
      app.add_subcommand("eval", "Evaluate a model: loss, accuracy, per-class accuracy, confusion matrix.");
  eval->add_option("--model", eval_args.model, "a model file (model.safetensors) or a checkpoint")
      ->required()
      ->type_name("FILE");
  eval->add_option("--data", eval_args.data, "fashion-mnist, a directory of IDX files, or a .csv file")
      ->required()
      ->type_name("SOURCE");
  eval->add_option("--target", eval_args.target,
                   "CSV target column (default: the one the model was trained on)")
      ->type_name("COL");
  command_flags.add(*eval, "--split", eval_args.split, "train|test");
  command_flags.add(*eval, "--limit", eval_args.limit, "N");
  eval->add_flag("--json", eval_args.json, "print JSON");

  // predict
  cli::PredictArgs predict_args;
  CLI::App* predict = app.add_subcommand(
      "predict",
      "Predict: one line per input row, the class and its probability (or the value, for regression).");
  predict->add_option("--model", predict_args.model, "a model file (model.safetensors) or a checkpoint")
      ->required()
      ->type_name("FILE");
  predict
      ->add_option("--input", predict_args.input,
                   "a .csv file of features, or an IDX image file (raw or .gz)")
      ->required()
      ->type_name("FILE");
  predict
      ->add_option(
          "--output", predict_args.output,
          "write the predictions to FILE instead of stdout (a link's target, a FIFO, a device, - for stdout)")
      ->type_name("FILE");
  command_flags.add(*predict, "--limit", predict_args.limit, "N");
  predict->add_flag("--json", predict_args.json, "one JSON object per line");
  predict->add_flag("--force", predict_args.force,
                    "let --output replace a file that holds something else (a model, a graph, ...)");

  // info
  cli::InfoArgs info_args;
  CLI::App* info = app.add_subcommand(
      "info", "Show a model's or checkpoint's architecture, parameter count and training metadata.");
  info->add_option("FILE", info_args.file, "a model file or a checkpoint")->required();
  info->add_flag("--json", info_args.json, "print JSON");

  // export
  cli::ExportArgs export_args;
  CLI::App* export_ = app.add_subcommand(
      "export",
      "Write a model as an ONNX model (opset 17) for ONNX Runtime and other runtimes: the same raw input as "
      "predict, logits out, class names in its metadata (docs/export.md).");
  export_->add_option("MODEL", export_args.model, "a model file (model.safetensors)")->required();
  export_->add_option("--onnx", export_args.onnx, "the ONNX file to write")
      ->required()
      ->type_name("OUT.onnx");
  export_->add_flag("--force", export_args.force,
                    "let --onnx replace a file that holds something else (a model, text, ...)");
  export_->add_flag("-q,--quiet", export_args.quiet, "print nothing but errors");

  // report
  std::string report_dir;
  bool report_quiet = false;
  CLI::App* report =
      app.add_subcommand("report", "(Re)build RUN_DIR/report.html from the run folder's files.");
  report->add_option("RUN_DIR", report_dir, "a run folder written by backprop train")->required();
  report->add_flag("-q,--quiet", report_quiet, "print nothing but errors");

  // explain
  cli::ExplainArgs explain_args;
  CLI::App* explain = app.add_subcommand("explain",
                                         "One step of backpropagation by hand for a small sigmoid network, "
                                         "checked against the autograd engine.");
  explain
      ->add_option("--graph", explain_args.graph,
                   "write the forward and backward graphs as Graphviz DOT (and SVG when `dot` is installed)")
      ->type_name("FILE");
  command_flags.add(*explain, "--repeated", explain_args.repeated, "N");
  command_flags.add(*explain, "--lr", explain_args.lr, "NUMBER");
  command_flags.add(*explain, "--seed", explain_args.seed, "N");
  explain->add_flag(
      "--conv", explain_args.conv,
      "one convolution layer instead: its deltas, dC/dW and dC/dx by hand, checked against conv2d");
  explain->add_flag("--json", explain_args.json, "print one JSON object");
  explain->add_flag("--force", explain_args.force,
                    "let --graph replace a file that holds something else (a model, text, ...)");

  // help [COMMAND]: the same text as --help and COMMAND --help.
  std::string help_topic;
  CLI::App* help = app.add_subcommand("help", "Show this help, or a command's: backprop help COMMAND.");
  help->add_option("COMMAND", help_topic, "a command")->type_name("COMMAND");
  // Every command: the exit codes below its help; unknown flags reported by check_leftovers, with a suggestion.
  for (CLI::App* s : app.get_subcommands({})) {
    s->footer(kFooter);
    if (s != help) s->allow_extras();
  }

  // A mistyped subcommand gets a suggestion before CLI11 reports "a subcommand is required".
  if (argc > 1 && argv[1][0] != '-' && command_named(argv[1], app) == nullptr)
    return fail("", "error: ", unknown_command(argv[1], app).c_str(), cli::kUsage);

  std::string command;
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      if (e.get_exit_code() == 0) return mpi->root() ? app.exit(e) : 0;  // --help, --version: rank 0 prints
      CLI::App* sub = app.get_subcommands().empty() ? nullptr : app.get_subcommands().front();
      return fail(sub ? sub->get_name() : "", "error: ", e.what(), cli::kUsage);
    }
    CLI::App* sub = app.get_subcommands().front();
    command = sub->get_name();
    check_leftovers(*sub);
    command_flags.apply(*sub);
    if (sub != train && !mpi->root()) return cli::kOk;  // under mpirun only `train` uses every rank
    if (sub == help) {
      if (help_topic.empty()) {  // not app.help(), which would describe the selected `help` subcommand
        std::cout << app.get_formatter()->make_help(&app, app.get_name(), CLI::AppFormatMode::Normal);
        return cli::kOk;
      }
      const CLI::App* topic = command_named(help_topic, app);
      if (topic == nullptr) throw bp::ConfigError(unknown_command(help_topic, app));
      std::cout << topic->help(app.get_name());
      return cli::kOk;
    }
    if (sub == train) {
      train_args.overrides = config_flags.given(*train);
      return written(cli::run_train(train_args));
    }
    if (sub == eval) return written(cli::run_eval(eval_args));
    if (sub == predict) return written(cli::run_predict(predict_args));
    if (sub == info) return written(cli::run_info(info_args));
    if (sub == export_) return written(cli::run_export(export_args));
    if (sub == report) return written(cli::run_report(report_dir, report_quiet));
    if (sub == explain) return written(cli::run_explain(explain_args, std::cout));
    return cli::kUsage;
  } catch (const std::bad_alloc&) {  // outside the tensor allocator, so the size is not known
    return fail(command, "error: ",
                "out of memory: the system refused an allocation outside tensor storage (size not known)",
                cli::kOutOfMemory);
  } catch (const std::exception& e) {
    for (const ErrorRow& row : kErrors)
      if (row.matches(e)) return fail(command, row.prefix, e.what(), row.code);
    return fail(command, "internal error: ", e.what(), cli::kInternal);
  }
}
