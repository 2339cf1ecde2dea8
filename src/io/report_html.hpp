// Building blocks of the HTML report (internal): escaping, base64 and inline-SVG line charts.
#pragma once

#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace backprop::io::report_html {

/// Text made safe for HTML element content and attribute values: & < > " ' escaped.
std::string escape(std::string_view text);

/// Standard base64 (with padding), for data: URLs.
std::string base64(std::string_view bytes);

/// A number for people: fixed with `digits` significant digits, or scientific when very large or small;
/// "–" for NaN.
std::string format_number(double v, int digits = 4);

/// A percentage with one decimal from a fraction: 0.8734 -> "87.3%".
std::string format_percent(double fraction);

struct Series {
  std::string name;
  std::string color;  // any CSS colour
  std::vector<double> x;
  std::vector<double> y;  // NaN (or, on a log axis, <= 0) breaks the line
  bool dashed = false;
};

struct ChartOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_y = false;                                          // decades on the y axis
  bool percent = false;                                        // y tick labels as percentages
  double marker_x = std::numeric_limits<double>::quiet_NaN();  // a vertical dashed line here, if finite
  std::string marker_label;
  int width = 520;
  int height = 300;
};

/// A self-contained <svg> line chart with axes, ticks, grid, one polyline per series, a tooltip (<title>) per
/// point, and an HTML legend after it. Returns "" when no series has a point that can be drawn.
std::string line_chart(const std::vector<Series>& series, const ChartOptions& options);

/// Colour i of the report's palette (cycles).
const char* palette(std::size_t i);

}  // namespace backprop::io::report_html
