// Checks on the report's HTML for the tests: every element the report emits is closed in order (void elements
// excepted), tag names are well formed (an unescaped '<' in text shows up as a bad tag), and small helpers.
#pragma once

#include <cctype>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace report_test {

/// "" when the tags balance; otherwise what is wrong and where (byte offset).
inline std::string check_tags(const std::string& html) {
  static const std::set<std::string> void_elements = {"meta", "link", "img", "br", "hr", "input"};
  std::vector<std::pair<std::string, std::size_t>> open;
  for (std::size_t at = html.find('<'); at != std::string::npos; at = html.find('<', at + 1)) {
    if (html.compare(at, 9, "<!DOCTYPE") == 0) continue;
    if (html.compare(at, 4, "<!--") == 0) {
      at = html.find("-->", at);
      if (at == std::string::npos) return "unterminated comment";
      continue;
    }
    const bool closing = at + 1 < html.size() && html[at + 1] == '/';
    std::size_t p = at + (closing ? 2 : 1);
    std::string name;
    while (p < html.size() && (std::isalnum(static_cast<unsigned char>(html[p])) || html[p] == '-'))
      name += html[p++];
    if (name.empty() || !std::isalpha(static_cast<unsigned char>(name[0])))
      return "a '<' that does not start a tag at byte " + std::to_string(at) + ": " + html.substr(at, 30);
    const std::size_t end = html.find('>', p);
    if (end == std::string::npos) return "unterminated tag <" + name + " at byte " + std::to_string(at);
    if (html.find('<', p) < end) return "a '<' inside tag <" + name + " at byte " + std::to_string(at);
    const bool self_closing = html[end - 1] == '/';
    if (closing) {
      if (open.empty()) return "</" + name + "> at byte " + std::to_string(at) + " closes nothing";
      if (open.back().first != name)
        return "</" + name + "> at byte " + std::to_string(at) + " closes <" + open.back().first +
               "> opened at byte " + std::to_string(open.back().second);
      open.pop_back();
    } else if (!self_closing && !void_elements.count(name)) {
      open.emplace_back(name, at);
      if (name == "style" || name == "script") {  // raw text up to the closing tag
        const std::size_t close = html.find("</" + name + ">", end);
        if (close == std::string::npos) return "<" + name + "> never closed";
        at = close - 1;
        continue;
      }
    }
    at = end;
  }
  if (!open.empty())
    return "<" + open.back().first + "> opened at byte " + std::to_string(open.back().second) +
           " never closed";
  return "";
}

inline std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

inline std::string base64_decode(const std::string& in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : in) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) throw std::runtime_error("bad base64 character");
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace report_test
