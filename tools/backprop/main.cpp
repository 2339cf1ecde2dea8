// `backprop`: the command line. Parses flags with CLI11 into the argument structs of cli.hpp, runs the
// subcommand, and turns exceptions into messages and exit codes (kFooter lists them).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <backprop/config.hpp>
#include <backprop/error.hpp>
#include <backprop/version.hpp>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <new>

#include "cli.hpp"
#include "explain.hpp"
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
  train->allow_extras();
  train->footer(kFooter);

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
  eval->add_option("--split", eval_args.split, "IDX data: which split to evaluate (train or test)")
      ->type_name("train|test");
  eval->add_option("--limit", eval_args.limit, "only the first N examples (0: all)")->type_name("N");
  eval->add_flag("--json", eval_args.json, "print JSON");
  eval->allow_extras();
  eval->footer(kFooter);

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
  predict->add_option("--output", predict_args.output, "write the predictions to FILE instead of stdout")
      ->type_name("FILE");
  predict->add_option("--limit", predict_args.limit, "only the first N rows (0: all)")->type_name("N");
  predict->add_flag("--json", predict_args.json, "one JSON object per line");
  predict->allow_extras();
  predict->footer(kFooter);

  // info
  cli::InfoArgs info_args;
  CLI::App* info = app.add_subcommand(
      "info", "Show a model's or checkpoint's architecture, parameter count and training metadata.");
  info->add_option("FILE", info_args.file, "a model file or a checkpoint")->required();
  info->add_flag("--json", info_args.json, "print JSON");
  info->allow_extras();
  info->footer(kFooter);

  // report
  std::string report_dir;
  bool report_quiet = false;
  CLI::App* report =
      app.add_subcommand("report", "(Re)build RUN_DIR/report.html from the run folder's files.");
  report->add_option("RUN_DIR", report_dir, "a run folder written by backprop train")->required();
  report->add_flag("-q,--quiet", report_quiet, "print nothing but errors");
  report->allow_extras();
  report->footer(kFooter);

  // explain
  ExplainArgs explain_args;
  CLI::App* explain = app.add_subcommand("explain",
                                         "One step of backpropagation by hand for a small sigmoid network, "
                                         "checked against the autograd engine.");
  explain
      ->add_option("--graph", explain_args.graph,
                   "write the forward and backward graphs as Graphviz DOT (and SVG when `dot` is installed)")
      ->type_name("FILE");
  explain
      ->add_option("--repeated", explain_args.repeated,
                   "instead: the naive chain rule's work against the memoised engine's, up to N")
      ->type_name("N");
  explain->add_option("--lr", explain_args.lr, "learning rate eta of the update (default 0.5)")
      ->type_name("NUMBER");
  explain->add_option("--seed", explain_args.seed, "seed of the example's weights (default 1)")
      ->type_name("N");
  explain->add_flag("--json", explain_args.json, "print one JSON object");
  explain->allow_extras();
  explain->footer(kFooter);

  // help [COMMAND]: the same text as --help and COMMAND --help.
  std::string help_topic;
  CLI::App* help = app.add_subcommand("help", "Show this help, or a command's: backprop help COMMAND.");
  help->add_option("COMMAND", help_topic, "a command")->type_name("COMMAND");
  help->footer(kFooter);

  // A mistyped subcommand gets a suggestion before CLI11 reports "a subcommand is required".
  if (argc > 1 && argv[1][0] != '-') {
    const std::string word = argv[1];
    std::vector<std::string> names;
    for (const CLI::App* s : app.get_subcommands({})) names.push_back(s->get_name());
    if (std::find(names.begin(), names.end(), word) == names.end()) {
      const std::string near = bp::config::closest(word, names);
      return fail("", "error: ",
                  ("unknown command '" + word + "'" + (near.empty() ? "" : "; did you mean '" + near + "'?") +
                   " (commands: train, eval, predict, info, report, explain, help)")
                      .c_str(),
                  cli::kUsage);
    }
  }

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
    if (sub != train && !mpi->root()) return cli::kOk;  // under mpirun only `train` uses every rank
    if (sub == help) {
      if (help_topic.empty()) {  // not app.help(), which would describe the selected `help` subcommand
        std::cout << app.get_formatter()->make_help(&app, app.get_name(), CLI::AppFormatMode::Normal);
        return cli::kOk;
      }
      for (const CLI::App* s : app.get_subcommands({}))
        if (s->get_name() == help_topic) {
          std::cout << s->help(app.get_name());
          return cli::kOk;
        }
      std::vector<std::string> names;
      for (const CLI::App* s : app.get_subcommands({})) names.push_back(s->get_name());
      const std::string near = bp::config::closest(help_topic, names);
      throw bp::ConfigError("unknown command '" + help_topic + "'" +
                            (near.empty() ? "" : "; did you mean '" + near + "'?") +
                            " (commands: train, eval, predict, info, report, explain, help)");
    }
    if (sub == train) {
      train_args.overrides = config_flags.given(*train);
      return cli::run_train(train_args);
    }
    if (sub == eval) return cli::run_eval(eval_args);
    if (sub == predict) return cli::run_predict(predict_args);
    if (sub == info) return cli::run_info(info_args);
    if (sub == report) return cli::run_report(report_dir, report_quiet);
    if (sub == explain) return run_explain(explain_args, std::cout);
    return cli::kUsage;
  } catch (const bp::OutOfMemoryError& e) {
    return fail(command, "error: ", e.what(), cli::kOutOfMemory);
  } catch (const bp::DivergedError& e) {
    return fail(command, "", e.what(), cli::kDiverged);
  } catch (const bp::ConfigError& e) {
    return fail(command, "error: ", e.what(), cli::kUsage);
  } catch (const bp::ValueError& e) {
    return fail(command, "error: ", e.what(), cli::kUsage);
  } catch (const bp::FileError& e) {
    return fail(command, "error: ", e.what(), cli::kData);
  } catch (const bp::ShapeError& e) {
    return fail(command, "error: ", e.what(), cli::kData);
  } catch (const bp::DTypeError& e) {
    return fail(command, "error: ", e.what(), cli::kData);
  } catch (const bp::IndexError& e) {
    return fail(command, "error: ", e.what(), cli::kData);
  } catch (const std::bad_alloc&) {  // outside the tensor allocator, so the size is not known
    return fail(command, "error: ",
                "out of memory: the system refused an allocation outside tensor storage (size not known)",
                cli::kOutOfMemory);
  } catch (const std::exception& e) {
    return fail(command, "internal error: ", e.what(), cli::kInternal);
  }
}
