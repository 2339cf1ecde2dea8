// Inline-SVG line charts and the small text helpers of the report. Everything is computed here and written as
// plain SVG elements, so the page needs no script to draw.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "io/report_html.hpp"

namespace backprop::io::report_html {

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string base64(std::string_view bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<std::uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<std::uint8_t>(bytes[i + 2]);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? table[v & 63] : '=';
  }
  return out;
}

std::string format_number(double v, int digits) {
  if (std::isnan(v)) return "\xe2\x80\x93";  // an en dash
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string format_percent(double fraction) {
  if (std::isnan(fraction)) return "\xe2\x80\x93";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * fraction);
  return buf;
}

const char* palette(std::size_t i) {
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                 "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
  return colors[i % (sizeof colors / sizeof colors[0])];
}

namespace {

// A step of 1, 2 or 5 times a power of ten giving about `count` intervals over `span`.
double nice_step(double span, int count) {
  const double raw = span / count;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / power;
  return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * power;
}

std::string fixed(double v, int decimals) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*f", std::max(decimals, 0), v);
  return std::string(buf) == "-0" ? "0" : buf;
}

std::string decade_label(int k) {
  if (k >= 0 && k <= 4) return fixed(std::pow(10.0, k), 0);
  if (k < 0 && k >= -3) return fixed(std::pow(10.0, k), -k);
  return "1e" + std::to_string(k);
}

std::string coord(double v) {
  return fixed(v, 1);
}

}  // namespace

std::string line_chart(const std::vector<Series>& series, const ChartOptions& o) {
  auto drawable = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!o.log_y || y > 0);
  };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  bool integer_x = true;
  for (const Series& s : series)
    for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!drawable(s.x[i], s.y[i])) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
      integer_x = integer_x && s.x[i] == std::round(s.x[i]);
    }
  if (!(x0 <= x1)) return "";

  // Axis ranges and ticks.
  if (x0 == x1) {
    x0 -= 1;
    x1 += 1;
  }
  double t0, t1;  // the y axis in transformed units (log10 y on a log axis)
  std::vector<std::pair<double, std::string>> yticks;  // transformed position, label
  std::vector<double> minor;                           // faint grid lines (log axis: 2..9 x 10^k)
  if (o.log_y) {
    t0 = std::floor(std::log10(y0));
    t1 = std::ceil(std::log10(y1));
    if (t0 == t1) t1 = t0 + 1;
    const int decades = static_cast<int>(t1 - t0);
    const int every = std::max(1, (decades + 7) / 8);
    for (int k = static_cast<int>(t0); k <= static_cast<int>(t1); ++k) {
      if ((k - static_cast<int>(t0)) % every == 0) yticks.emplace_back(k, decade_label(k));
      if (decades <= 6 && k < t1)
        for (int m = 2; m <= 9; ++m) minor.push_back(k + std::log10(m));
    }
  } else {
    if (y0 == y1) {
      const double pad = std::max(std::abs(y0) * 0.1, 0.05);
      y0 -= pad;
      y1 += pad;
    }
    const double step = nice_step(y1 - y0, 5);
    t0 = std::floor(y0 / step) * step;
    t1 = std::ceil(y1 / step) * step;
    if (o.percent) {
      t0 = std::max(t0, std::min(0.0, y0));
      t1 = std::min(t1, std::max(1.0, y1));
    }
    const int decimals = static_cast<int>(-std::floor(std::log10(step) + 1e-9));
    for (double t = t0; t <= t1 + step * 1e-6; t += step)
      yticks.emplace_back(t, o.percent ? fixed(100 * t, decimals - 2) + "%" : fixed(t, decimals));
  }
  double xstep = nice_step(x1 - x0, 8);
  if (integer_x) xstep = std::max(1.0, std::round(xstep));
  const int xdecimals = integer_x ? 0 : static_cast<int>(-std::floor(std::log10(xstep) + 1e-9));

  const double W = o.width, H = o.height, L = 64, R = W - 18, T = 30, B = H - 44;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (R - L); };
  auto py = [&](double y) { return B - ((o.log_y ? std::log10(y) : y) - t0) / (t1 - t0) * (B - T); };
  auto pt = [&](double t) { return B - (t - t0) / (t1 - t0) * (B - T); };

  std::ostringstream svg;
  svg << "<figure class=\"chart\">\n<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " << W << " " << H
      << "\" width=\"" << W << "\" height=\"" << H << "\" role=\"img\" aria-label=\"" << escape(o.title)
      << "\">\n";
  svg << "<text class=\"chart-title\" x=\"" << L << "\" y=\"18\">" << escape(o.title) << "</text>\n";
  for (double m : minor)
    svg << "<line class=\"grid-minor\" x1=\"" << L << "\" x2=\"" << R << "\" y1=\"" << coord(pt(m))
        << "\" y2=\"" << coord(pt(m)) << "\"></line>\n";
  for (const auto& [t, label] : yticks) {
    svg << "<line class=\"grid\" x1=\"" << L << "\" x2=\"" << R << "\" y1=\"" << coord(pt(t)) << "\" y2=\""
        << coord(pt(t)) << "\"></line>\n";
    svg << "<text class=\"tick\" x=\"" << L - 6 << "\" y=\"" << coord(pt(t) + 4) << "\" text-anchor=\"end\">"
        << escape(label) << "</text>\n";
  }
  for (double x = std::ceil(x0 / xstep) * xstep; x <= x1 + xstep * 1e-6; x += xstep) {
    svg << "<line class=\"grid\" x1=\"" << coord(px(x)) << "\" x2=\"" << coord(px(x)) << "\" y1=\"" << T
        << "\" y2=\"" << B << "\"></line>\n";
    svg << "<text class=\"tick\" x=\"" << coord(px(x)) << "\" y=\"" << B + 16 << "\" text-anchor=\"middle\">"
        << fixed(x, xdecimals) << "</text>\n";
  }
  svg << "<path class=\"axis\" d=\"M" << L << " " << T << " L" << L << " " << B << " L" << R << " " << B
      << "\"></path>\n";
  svg << "<text class=\"axis-label\" x=\"" << (L + R) / 2 << "\" y=\"" << H - 8
      << "\" text-anchor=\"middle\">" << escape(o.x_label) << "</text>\n";
  svg << "<text class=\"axis-label\" transform=\"rotate(-90)\" x=\"" << -(T + B) / 2
      << "\" y=\"14\" text-anchor=\"middle\">" << escape(o.y_label) << "</text>\n";
  if (std::isfinite(o.marker_x) && o.marker_x >= x0 && o.marker_x <= x1) {
    svg << "<line class=\"marker\" x1=\"" << coord(px(o.marker_x)) << "\" x2=\"" << coord(px(o.marker_x))
        << "\" y1=\"" << T << "\" y2=\"" << B << "\"></line>\n";
    const bool right_half = px(o.marker_x) > (L + R) / 2;
    svg << "<text class=\"marker-label\" x=\"" << coord(px(o.marker_x) + (right_half ? -4 : 4)) << "\" y=\""
        << T + 12 << "\" text-anchor=\"" << (right_half ? "end" : "start") << "\">" << escape(o.marker_label)
        << "</text>\n";
  }

  std::vector<const Series*> drawn;
  for (const Series& s : series) {
    const std::size_t n = std::min(s.x.size(), s.y.size());
    std::ostringstream d;
    bool pen_down = false;
    std::size_t points = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (!drawable(s.x[i], s.y[i])) {
        pen_down = false;
        continue;
      }
      d << (pen_down ? " L" : (d.tellp() > 0 ? " M" : "M")) << coord(px(s.x[i])) << " " << coord(py(s.y[i]));
      pen_down = true;
      ++points;
    }
    if (points == 0) continue;
    drawn.push_back(&s);
    svg << "<path class=\"series\" d=\"" << d.str() << "\" stroke=\"" << escape(s.color) << "\""
        << (s.dashed ? " stroke-dasharray=\"6 4\"" : "") << "></path>\n";
    if (points <= 60) {
      for (std::size_t i = 0; i < n; ++i) {
        if (!drawable(s.x[i], s.y[i])) continue;
        svg << "<circle cx=\"" << coord(px(s.x[i])) << "\" cy=\"" << coord(py(s.y[i]))
            << "\" r=\"2.6\" fill=\"" << escape(s.color) << "\"><title>" << escape(s.name) << ": "
            << format_number(s.x[i], 6) << ", "
            << (o.percent ? format_percent(s.y[i]) : format_number(s.y[i], 5)) << "</title></circle>\n";
      }
    }
  }
  svg << "</svg>\n<div class=\"legend\">";
  for (const Series* s : drawn)
    svg << "<span class=\"key\"><i style=\"border-top: 3px " << (s->dashed ? "dashed" : "solid") << " "
        << escape(s->color) << "\"></i>" << escape(s->name) << "</span>";
  svg << "</div>\n</figure>\n";
  return svg.str();
}

}  // namespace backprop::io::report_html
