// The HTML training report: one self-contained page assembled from the run's metrics.jsonl and config.toml.
// Each section reads what the records hold and, when a piece is missing, says so in a sentence instead of
// drawing an empty chart. Charts are in report_svg.cpp, the metrics reader in report_parse.cpp, the PNG
// thumbnails in report_png.cpp.
#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/io.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/io/report.hpp>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "io/report_html.hpp"

namespace backprop::io {

namespace {

using namespace report_html;

constexpr std::size_t kMaxImages = 64;

const char* kStyle = R"css(
body { margin: 0; background: #f4f5f7; color: #1d232a;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 18px 22px 36px; }
header h1 { font-size: 24px; margin: 0; }
header p { margin: 2px 0 0; color: #57606a; }
h2 { font-size: 18px; margin: 0 0 10px; }
section { background: #fff; border: 1px solid #dfe3e8; border-radius: 8px; padding: 14px 18px; margin: 14px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid #dfe3e8; border-radius: 6px; padding: 7px 12px; min-width: 118px; }
.card span { color: #57606a; font-size: 12px; }
.card b { display: block; font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 10px 20px; }
figure.chart { margin: 0; }
svg text { font-family: inherit; }
.chart-title { font-size: 13px; font-weight: 600; fill: #1d232a; }
.tick { font-size: 11px; fill: #57606a; }
.axis-label { font-size: 12px; fill: #57606a; }
.grid { stroke: #e8ebef; stroke-width: 1; }
.grid-minor { stroke: #f3f4f6; stroke-width: 1; }
.axis { stroke: #8c959f; fill: none; }
.series { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
.marker { stroke: #6e7781; stroke-dasharray: 4 3; }
.marker-label { font-size: 11px; fill: #57606a; }
.legend { display: flex; flex-wrap: wrap; gap: 2px 14px; margin: 2px 0 0 64px; font-size: 12px; }
.key i { display: inline-block; width: 22px; height: 0; vertical-align: middle; margin-right: 5px; }
.note { color: #57606a; }
.warn { border-left: 3px solid #d4a72c; padding: 2px 0 2px 10px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
td, th { padding: 3px 9px; border-bottom: 1px solid #eaeef2; text-align: right; }
th { font-weight: 600; color: #57606a; }
th.name, td.name { text-align: left; }
table.confusion td { border: 1px solid #fff; min-width: 46px; text-align: center; }
table.confusion th { border: none; }
.scroll { overflow-x: auto; }
.images { display: grid; grid-template-columns: repeat(auto-fill, minmax(100px, 1fr)); gap: 12px 10px; }
.images figure { margin: 0; text-align: center; font-size: 11px; line-height: 1.3; }
.images img { width: 84px; height: 84px; image-rendering: pixelated; border: 1px solid #d0d7de; }
.filters { grid-template-columns: repeat(auto-fill, minmax(52px, 1fr)); }
.filters img { width: 48px; height: 48px; }
.images .pred { color: #b42318; }
pre { background: #f6f8fa; border: 1px solid #dfe3e8; border-radius: 6px; padding: 10px 12px; margin: 0;
      overflow: auto; font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
footer { color: #8c959f; font-size: 12px; text-align: center; }
)css";

std::string note(const std::string& text) {
  return "<p class=\"note\">" + escape(text) + "</p>\n";
}

bool any_finite(const std::vector<ReportEpoch>& epochs, double ReportEpoch::*field) {
  return std::any_of(epochs.begin(), epochs.end(),
                     [&](const ReportEpoch& e) { return std::isfinite(e.*field); });
}

// The last finite value of a field, NaN if none.
double last_finite(const std::vector<ReportEpoch>& epochs, double ReportEpoch::*field) {
  for (auto it = epochs.rbegin(); it != epochs.rend(); ++it)
    if (std::isfinite((*it).*field)) return (*it).*field;
  return std::nan("");
}

// The epoch record with the lowest validation loss, or null.
const ReportEpoch* best_validation(const std::vector<ReportEpoch>& epochs) {
  const ReportEpoch* best = nullptr;
  for (const ReportEpoch& e : epochs)
    if (std::isfinite(e.val_loss) && (!best || e.val_loss < best->val_loss)) best = &e;
  return best;
}

Series epoch_series(const std::vector<ReportEpoch>& epochs, double ReportEpoch::*field, std::string name,
                    const char* color, bool dashed) {
  Series s{.name = std::move(name), .color = color, .dashed = dashed};
  for (const ReportEpoch& e : epochs) {
    s.x.push_back(static_cast<double>(e.epoch));
    s.y.push_back(e.*field);
  }
  return s;
}

std::string card(const std::string& label, const std::string& value) {
  return "<div class=\"card\"><span>" + escape(label) + "</span><b>" + escape(value) + "</b></div>";
}

std::string summary_section(const ReportData& d) {
  std::ostringstream out;
  out << "<section id=\"summary\">\n<div class=\"cards\">";
  if (!d.epochs.empty()) {
    out << card("epochs", std::to_string(d.epochs.back().epoch));
    out << card("final train loss", format_number(last_finite(d.epochs, &ReportEpoch::train_loss)));
    if (any_finite(d.epochs, &ReportEpoch::val_loss))
      out << card("final validation loss", format_number(last_finite(d.epochs, &ReportEpoch::val_loss)));
    if (const ReportEpoch* best = best_validation(d.epochs))
      out << card("best validation loss",
                  format_number(best->val_loss) + " @ " + std::to_string(best->epoch));
    if (any_finite(d.epochs, &ReportEpoch::val_accuracy))
      out << card("final validation accuracy",
                  format_percent(last_finite(d.epochs, &ReportEpoch::val_accuracy)));
    double seconds = 0;
    for (const ReportEpoch& e : d.epochs)
      if (std::isfinite(e.seconds)) seconds += e.seconds;
    if (seconds > 0) out << card("training time", format_number(seconds, 3) + " s");
  }
  if (d.test) {
    if (std::isfinite(d.test->accuracy)) out << card("test accuracy", format_percent(d.test->accuracy));
    if (std::isfinite(d.test->loss)) out << card("test loss", format_number(d.test->loss));
  }
  out << "</div>\n";
  if (d.epochs.empty() && !d.test) out << note("metrics.jsonl holds no epoch or test records yet.");
  out << "</section>\n";
  return out.str();
}

std::string curves_section(const ReportData& d) {
  std::ostringstream out;
  out << "<section id=\"curves\">\n<h2>Training and validation curves</h2>\n";
  if (d.epochs.empty()) {
    out << note("No epoch records: nothing to plot yet.") << "</section>\n";
    return out.str();
  }
  const bool has_val = any_finite(d.epochs, &ReportEpoch::val_loss);
  const ReportEpoch* best = best_validation(d.epochs);
  ChartOptions loss{.title = "Loss", .x_label = "epoch", .y_label = "loss"};
  ChartOptions acc{.title = "Accuracy", .x_label = "epoch", .y_label = "accuracy", .percent = true};
  if (best && best->epoch != d.epochs.back().epoch) {
    loss.marker_x = acc.marker_x = static_cast<double>(best->epoch);
    loss.marker_label = acc.marker_label = "lowest validation loss";
  }
  const std::string loss_chart =
      line_chart({epoch_series(d.epochs, &ReportEpoch::train_loss, "train", palette(0), false),
                  epoch_series(d.epochs, &ReportEpoch::val_loss, "validation", palette(3), true)},
                 loss);
  const std::string acc_chart =
      line_chart({epoch_series(d.epochs, &ReportEpoch::train_accuracy, "train", palette(0), false),
                  epoch_series(d.epochs, &ReportEpoch::val_accuracy, "validation", palette(3), true)},
                 acc);
  out << "<div class=\"charts\">\n" << loss_chart << acc_chart << "</div>\n";
  if (loss_chart.empty()) out << note("No finite loss values to plot.");
  if (acc_chart.empty()) out << note("No accuracy recorded (a regression run has none).");
  if (!has_val) {
    out << note(
        "No validation split in this run, so only the training curve is shown; overfitting shows as a "
        "validation curve that turns up while the training curve keeps falling.");
  } else if (best) {
    // Overfitting: the validation loss has turned up for a while (the mean of the last three epochs is 5%
    // above its minimum, at least three epochs after it) while the training loss kept falling. Validation
    // noise alone rarely does that.
    std::vector<const ReportEpoch*> after;
    for (const ReportEpoch& e : d.epochs)
      if (e.epoch > best->epoch && std::isfinite(e.val_loss)) after.push_back(&e);
    double tail = 0;
    const std::size_t k = std::min<std::size_t>(3, after.size());
    for (std::size_t i = after.size() - k; i < after.size(); ++i)
      tail += after[i]->val_loss / static_cast<double>(k);
    const double last_train = last_finite(d.epochs, &ReportEpoch::train_loss);
    if (after.size() >= 3 && tail > 1.05 * best->val_loss && last_train < best->train_loss) {
      out << "<p class=\"note warn\">"
          << escape("Overfitting: the validation loss was lowest at epoch " + std::to_string(best->epoch) +
                    " (" + format_number(best->val_loss) + ") and averaged " + format_number(tail) +
                    " over the last " + std::to_string(k) +
                    " epochs, while the training loss kept falling to " + format_number(last_train) +
                    ". Early stopping, L2 / weight decay or dropout would help.")
          << "</p>\n";
    } else {
      out << note(
          "The validation loss is lowest at epoch " + std::to_string(best->epoch) + " (" +
          format_number(best->val_loss) + "); it has not turned up for long, so no clear overfitting yet." +
          (std::isfinite(last_train) && last_train < 0.8 * last_finite(d.epochs, &ReportEpoch::val_loss)
               ? " The gap between the training and validation losses is what overfitting grows from."
               : ""));
    }
  }
  out << "</section>\n";
  return out.str();
}

std::string gradients_section(const ReportData& d) {
  std::ostringstream out;
  out << "<section id=\"gradients\">\n<h2>Gradient flow</h2>\n";
  if (d.grad_flow.empty()) {
    out << note(
               "No gradient-flow records in this run (train with --grad-flow N to measure the per-layer "
               "gradient norms every N updates).")
        << "</section>\n";
    return out.str();
  }
  // One series per layer name, in the order the layers first appear.
  std::vector<std::string> names;
  std::map<std::string, Series> by_name;
  for (const ReportGradFlow& g : d.grad_flow)
    for (const ReportLayer& l : g.layers) {
      auto [it, inserted] = by_name.try_emplace(l.name);
      if (inserted) {
        names.push_back(l.name);
        it->second.name = l.name;
        it->second.color = palette(names.size() - 1);
      }
      it->second.x.push_back(static_cast<double>(g.step));
      it->second.y.push_back(l.grad_norm);
    }
  std::vector<Series> series;
  for (const std::string& n : names) series.push_back(by_name[n]);
  const std::string chart = line_chart(series, {.title = "Gradient norm per layer, ||dC/dW||, log scale",
                                                .x_label = "update (step)",
                                                .y_label = "gradient norm",
                                                .log_y = true,
                                                .width = 760,
                                                .height = 320});
  out << (chart.empty() ? note("No positive finite gradient norms to plot.") : chart);

  const ReportGradFlow& last = d.grad_flow.back();
  out << "<p>At step " << last.step << " (epoch " << last.epoch << "):</p>\n<div class=\"scroll\"><table>\n"
      << "<tr><th class=\"name\">layer</th><th class=\"name\">activation</th><th>gradient norm</th>"
         "<th>weight norm</th><th>gradient / weight</th><th>saturated</th><th>dead</th></tr>\n";
  for (const ReportLayer& l : last.layers) {
    out << "<tr><td class=\"name\">" << escape(l.name) << "</td><td class=\"name\">" << escape(l.activation)
        << "</td><td>" << format_number(l.grad_norm) << "</td><td>" << format_number(l.weight_norm)
        << "</td><td>" << format_number(l.grad_norm / l.weight_norm) << "</td><td>"
        << format_percent(l.activation.empty() ? NAN : l.saturated_fraction) << "</td><td>"
        << format_percent(l.activation.empty() ? NAN : l.dead_fraction) << "</td></tr>\n";
  }
  out << "</table></div>\n";
  // Vanishing gradients: the first layer's gradient norm far below the last layer's. Look at every record, as
  // they often vanish early in training and recover (or not) later.
  const ReportGradFlow* worst = nullptr;
  double worst_ratio = 0, last_ratio = std::nan("");
  for (const ReportGradFlow& g : d.grad_flow) {
    if (g.layers.size() < 2) continue;
    const double first = g.layers.front().grad_norm, top = g.layers.back().grad_norm;
    if (!(first > 0 && top > 0 && std::isfinite(first) && std::isfinite(top))) continue;
    if (top / first > worst_ratio) {
      worst_ratio = top / first;
      worst = &g;
    }
    if (&g == &last) last_ratio = top / first;
  }
  if (worst && worst_ratio >= 10) {
    out << "<p class=\"note warn\">"
        << escape("Vanishing gradients: at step " + std::to_string(worst->step) + " (epoch " +
                  std::to_string(worst->epoch) + ") the first layer's gradient was " +
                  format_number(worst_ratio, 3) + " times smaller than the last layer's" +
                  (std::isfinite(last_ratio) && &last != worst
                       ? "; at the last record the factor is " + format_number(last_ratio, 3)
                       : std::string()) +
                  ". Layers far from the output learn slowly when this factor is large; ReLU with He "
                  "initialisation or batch normalisation keeps the norms closer.")
        << "</p>\n";
  } else if (worst) {
    out << note(worst_ratio <= 1
                    ? std::string("In every record the first layer's gradient norm is at least the last "
                                  "layer's: no vanishing gradients.")
                    : "In every record the first layer's gradient norm is at most " +
                          format_number(worst_ratio, 3) +
                          " times smaller than the last layer's: no vanishing gradients.");
  }
  out << "</section>\n";
  return out.str();
}

std::string confusion_table(const ReportTest& t) {
  std::ostringstream out;
  out << "<div class=\"scroll\"><table class=\"confusion\">\n<tr><th class=\"name\">true \\ predicted</th>";
  for (const std::string& n : t.class_names) out << "<th>" << escape(n) << "</th>";
  out << "<th>recall</th></tr>\n";
  for (std::size_t r = 0; r < t.confusion.size(); ++r) {
    std::int64_t total = 0;
    for (std::int64_t c : t.confusion[r]) total += c;
    out << "<tr><th class=\"name\">" << escape(t.class_names[r]) << "</th>";
    for (std::size_t c = 0; c < t.confusion[r].size(); ++c) {
      const std::int64_t n = t.confusion[r][c];
      const double share = total > 0 ? static_cast<double>(n) / static_cast<double>(total) : 0.0;
      // Correct answers in blue by their share of the row; mistakes in red, amplified so a 10% confusion
      // shows.
      const double alpha = r == c ? share : std::min(1.0, 3.0 * share);
      char bg[64];
      std::snprintf(bg, sizeof bg, r == c ? "rgba(31,119,180,%.3f)" : "rgba(214,39,40,%.3f)", alpha);
      out << "<td style=\"background:" << bg << (alpha > 0.55 ? ";color:#fff" : "") << "\" title=\""
          << escape("true " + t.class_names[r] + ", predicted " + t.class_names[c] + ": " +
                    std::to_string(n) + " (" + format_percent(share) + " of the row)")
          << "\">" << (r == c ? "<b>" : "") << n << (r == c ? "</b>" : "") << "</td>";
    }
    out << "<td>"
        << (total > 0 ? format_percent(static_cast<double>(t.confusion[r][r]) / static_cast<double>(total))
                      : "\xe2\x80\x93")
        << "</td></tr>\n";
  }
  out << "</table></div>\n"
      << note(
             "Rows are the true classes, columns the predictions; blue shades the share of each row "
             "predicted "
             "correctly, red the confusions.");
  return out.str();
}

// More than kFullConfusionClasses classes: the largest confusions and each class's accuracy, worst first,
// instead of the matrix (whose size grows with the square of the class count).
std::string top_confusions_table(const ReportTest& t) {
  const std::vector<Confusion> top = t.confusion.empty() ? t.top_confusions : top_confusions(t.confusion);
  std::vector<double> accuracy = t.per_class_accuracy;
  if (accuracy.empty())
    for (const std::vector<std::int64_t>& row : t.confusion) {
      std::int64_t total = 0;
      for (std::int64_t c : row) total += c;
      const std::size_t r = accuracy.size();
      accuracy.push_back(total > 0 ? static_cast<double>(row[r]) / static_cast<double>(total)
                                   : std::numeric_limits<double>::quiet_NaN());
    }
  const auto name = [&](std::int64_t c) {
    return c >= 0 && static_cast<std::size_t>(c) < t.class_names.size()
               ? t.class_names[static_cast<std::size_t>(c)]
               : std::to_string(c);
  };
  std::ostringstream out;
  out << note(std::to_string(t.class_names.size()) + " classes, more than " +
              std::to_string(kFullConfusionClasses) +
              ": instead of the whole confusion matrix, its largest off-diagonal cells and each class's "
              "accuracy.");
  out << "<h3>Largest confusions</h3>\n";
  if (top.empty()) {
    out << note("No test example was misclassified.");
  } else {
    out << "<div class=\"scroll\"><table>\n<tr><th>true class</th><th>predicted</th><th>examples</th></tr>\n";
    for (const Confusion& c : top)
      out << "<tr><td>" << escape(name(c.true_class)) << "</td><td>" << escape(name(c.predicted))
          << "</td><td>" << c.count << "</td></tr>\n";
    out << "</table></div>\n";
  }
  if (!accuracy.empty()) {
    std::vector<std::size_t> order(accuracy.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return !std::isnan(accuracy[a]) && (std::isnan(accuracy[b]) || accuracy[a] < accuracy[b]);
    });
    out << "<h3>Accuracy per class, worst first</h3>\n<div class=\"scroll\"><table>\n"
        << "<tr><th>class</th><th>accuracy</th></tr>\n";
    for (std::size_t c : order)
      out << "<tr><td>" << escape(name(static_cast<std::int64_t>(c))) << "</td><td>"
          << (std::isnan(accuracy[c]) ? std::string("\xe2\x80\x93 (no test example)")
                                      : format_percent(accuracy[c]))
          << "</td></tr>\n";
    out << "</table></div>\n";
  }
  return out.str();
}

std::string test_section(const ReportData& d) {
  std::ostringstream out;
  out << "<section id=\"test\">\n<h2>Test set: confusion matrix</h2>\n";
  if (!d.test) {
    out << note("No test record in this run: evaluate on the test set to see the confusion matrix here.")
        << "</section>\n";
    return out.str();
  }
  const ReportTest& t = *d.test;
  out << "<p>Test loss " << format_number(t.loss) << ", accuracy " << format_percent(t.accuracy) << ".</p>\n";
  if (t.confusion.size() > kFullConfusionClasses || (t.confusion.empty() && !t.top_confusions.empty()))
    out << top_confusions_table(t);
  else
    out << (t.confusion.empty() ? note("The test record has no confusion matrix (a regression run has none).")
                                : confusion_table(t));
  out << "</section>\n";
  return out.str();
}

std::string class_name(const ReportTest& t, std::int64_t c) {
  return c >= 0 && static_cast<std::size_t>(c) < t.class_names.size()
             ? t.class_names[static_cast<std::size_t>(c)]
             : std::to_string(c);
}

std::string misclassified_section(const ReportData& d) {
  std::ostringstream out;
  out << "<section id=\"misclassified\">\n<h2>Misclassified test images</h2>\n";
  if (!d.test || d.test->misclassified.empty()) {
    out << note(d.test ? "The test record lists no misclassified examples."
                       : "No test record in this run, so no misclassified examples to show.")
        << "</section>\n";
    return out.str();
  }
  const ReportTest& t = *d.test;
  const std::size_t shown = std::min(t.misclassified.size(), kMaxImages);
  out << "<div class=\"images\">\n";
  for (std::size_t i = 0; i < shown; ++i) {
    const ReportMisclassified& m = t.misclassified[i];
    const std::string caption = "#" + std::to_string(m.index) + " true " + class_name(t, m.true_class) +
                                ", predicted " + class_name(t, m.predicted);
    out << "<figure>";
    if (!m.pixels.empty()) {
      std::vector<std::uint8_t> gray(m.pixels.size());
      for (std::size_t p = 0; p < gray.size(); ++p)
        gray[p] = static_cast<std::uint8_t>(std::lround(std::clamp(m.pixels[p], 0.0, 1.0) * 255.0));
      out << "<img alt=\"" << escape(caption) << "\" title=\"" << escape(caption)
          << "\" src=\"data:image/png;base64," << base64(encode_png(gray, m.width, m.height)) << "\">";
    }
    out << "<figcaption>#" << m.index << "<br>" << escape(class_name(t, m.true_class))
        << "<br><span class=\"pred\">" << escape(class_name(t, m.predicted))
        << "</span></figcaption></figure>\n";
  }
  out << "</div>\n";
  out << note("Under each image: its index in the test set, the true class, and (in red) the prediction." +
              (t.misclassified.size() > shown
                   ? " The first " + std::to_string(shown) + " of " + std::to_string(t.misclassified.size()) +
                         " listed examples are shown."
                   : std::string()));
  out << "</section>\n";
  return out.str();
}

// One small image per filter, its weights scaled from the filter's own minimum (black) to maximum (white); a
// filter over several input channels shows their mean.
std::string filters_section(const ReportData& d) {
  if (!d.filters) return "";
  const ReportFilters& f = *d.filters;
  const std::int64_t out_ch = f.shape[0], in_ch = f.shape[1], kh = f.shape[2], kw = f.shape[3];
  constexpr std::int64_t kMaxFilters = 256;
  std::ostringstream out;
  out << "<section id=\"filters\">\n<h2>First-layer filters</h2>\n<div class=\"images filters\">\n";
  for (std::int64_t o = 0; o < std::min(out_ch, kMaxFilters); ++o) {
    std::vector<double> mean(static_cast<std::size_t>(kh * kw), 0.0);
    for (std::int64_t c = 0; c < in_ch; ++c)
      for (std::int64_t k = 0; k < kh * kw; ++k)
        mean[static_cast<std::size_t>(k)] +=
            f.values[static_cast<std::size_t>((o * in_ch + c) * kh * kw + k)] / static_cast<double>(in_ch);
    const auto [lo, hi] = std::minmax_element(mean.begin(), mean.end());
    const double range = *hi - *lo;
    std::vector<std::uint8_t> gray(mean.size());
    for (std::size_t k = 0; k < mean.size(); ++k)
      gray[k] = static_cast<std::uint8_t>(range > 0 ? std::lround((mean[k] - *lo) / range * 255.0) : 128);
    const std::string caption = "filter " + std::to_string(o);
    out << "<figure><img alt=\"" << caption << "\" title=\"" << caption << "\" src=\"data:image/png;base64,"
        << base64(encode_png(gray, kw, kh)) << "\"><figcaption>" << o << "</figcaption></figure>\n";
  }
  out << "</div>\n"
      << note("The " + std::to_string(std::min(out_ch, kMaxFilters)) + " filters of " + escape(f.name) +
              " (" + std::to_string(kh) + "x" + std::to_string(kw) +
              (in_ch > 1 ? ", the mean over " + std::to_string(in_ch) + " input channels" : std::string()) +
              "), each scaled from its smallest weight (black) to its largest (white).")
      << "</section>\n";
  return out.str();
}

std::string epochs_section(const ReportData& d) {
  if (d.epochs.empty()) return "";
  std::ostringstream out;
  out << "<section id=\"epochs\">\n<h2>Epochs</h2>\n<div class=\"scroll\"><table>\n"
      << "<tr><th>epoch</th><th>train loss</th><th>train accuracy</th><th>validation loss</th>"
         "<th>validation accuracy</th><th>learning rate</th><th>seconds</th></tr>\n";
  for (const ReportEpoch& e : d.epochs)
    out << "<tr><td>" << e.epoch << "</td><td>" << format_number(e.train_loss) << "</td><td>"
        << format_percent(e.train_accuracy) << "</td><td>" << format_number(e.val_loss) << "</td><td>"
        << format_percent(e.val_accuracy) << "</td><td>" << format_number(e.lr) << "</td><td>"
        << format_number(e.seconds, 3) << "</td></tr>\n";
  out << "</table></div>\n</section>\n";
  return out.str();
}

std::string config_section(const std::string& config) {
  std::ostringstream out;
  out << "<section id=\"config\">\n<h2>Configuration</h2>\n";
  if (config.empty())
    out << note("No config.toml in the run folder.");
  else
    out << "<pre>" << escape(config) << "</pre>\n";
  out << "</section>\n";
  return out.str();
}

}  // namespace

std::optional<ReportFilters> first_filters(const std::map<std::string, Tensor>& state) {
  // Module names are dotted numbers or words; compare the numeric parts as numbers ("2" before "10").
  const auto before = [](const std::string& a, const std::string& b) {
    std::size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
      if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
        std::size_t ie = i, je = j;
        while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
        while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
        const std::string na = a.substr(i, ie - i), nb = b.substr(j, je - j);
        if (na.size() != nb.size() || na != nb)
          return na.size() != nb.size() ? na.size() < nb.size() : na < nb;
        i = ie, j = je;
      } else {
        if (a[i] != b[j]) return a[i] < b[j];
        ++i, ++j;
      }
    }
    return a.size() - i < b.size() - j;
  };
  const std::pair<const std::string, Tensor>* first = nullptr;
  for (const auto& entry : state)
    if (entry.second.dim() == 4 && entry.first.ends_with("weight") &&
        (!first || before(entry.first, first->first)))
      first = &entry;
  if (!first) return std::nullopt;
  return ReportFilters{
      .name = first->first, .shape = first->second.shape(), .values = first->second.to_vector()};
}

std::string render_report(const ReportData& data, const std::string& config, const std::string& title) {
  std::ostringstream page;
  page << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       << "<link rel=\"icon\" href=\"data:,\">\n"
       << "<title>" << escape("backprop report: " + title) << "</title>\n<style>" << kStyle << "</style>\n"
       << "</head>\n<body>\n<main>\n<header>\n<h1>Training report</h1>\n<p>" << escape(title)
       << "</p>\n</header>\n";
  page << summary_section(data) << curves_section(data) << gradients_section(data) << test_section(data)
       << misclassified_section(data) << filters_section(data) << epochs_section(data)
       << config_section(config);
  page << "<footer>Written by backprop from metrics.jsonl and "
          "config.toml.</footer>\n</main>\n</body>\n</html>\n";
  return page.str();
}

void write_report(const std::string& run_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  BP_CHECK(fs::is_directory(run_dir, ec), FileError, "report: run folder '", run_dir,
           "' does not exist or is not a directory");
  const fs::path dir(run_dir);
  ReportData data = read_report_data((dir / "metrics.jsonl").string());
  const fs::path model = dir / "model.safetensors";
  if (fs::is_regular_file(model, ec)) data.filters = first_filters(load_model(model.string()).state);
  const fs::path config_path = dir / "config.toml";
  const std::string config = fs::exists(config_path, ec) ? read_file(config_path.string()) : std::string();
  std::string title = (dir.filename().empty() ? dir.parent_path() : dir).filename().string();
  if (title.empty() || title == ".") title = fs::absolute(dir, ec).lexically_normal().filename().string();
  write_file_atomic((dir / "report.html").string(), render_report(data, config, title));
}

}  // namespace backprop::io
