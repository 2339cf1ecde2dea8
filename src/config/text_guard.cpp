#include "config/text_guard.hpp"

#include <backprop/error.hpp>
#include <cstdio>

namespace backprop::config::detail {

namespace {

// The packaged toml++ (3.3) reaches __builtin_unreachable in is_non_ascii_horizontal_whitespace() for these
// code points whenever its tokenizer looks at them outside a string. On malformed input its idea of "inside a
// string" can differ from any simple scanner's, so these are refused wherever they appear.
bool unsafe_for_toml_parser(char32_t c) {
  return (c >= 0xA1 && c <= 0x499) || (c >= 0xFB26 && c <= 0xFEFE);
}

/// Decodes the 2- or 3-byte UTF-8 sequence at text[i] (0 when there is none).
char32_t decode(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 >= 0xC2 && b0 <= 0xDF && i + 1 < text.size())
    return (char32_t{b0} & 0x1F) << 6 | (byte(i + 1) & 0x3F);
  if (b0 >= 0xE0 && b0 <= 0xEF && i + 2 < text.size())
    return (char32_t{b0} & 0x0F) << 12 | (char32_t{byte(i + 1)} & 0x3F) << 6 | (byte(i + 2) & 0x3F);
  return 0;
}

}  // namespace

void check_non_ascii_outside_strings(std::string_view text, const std::string& source) {
  {
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < text.size(); ++i, ++column) {
      if (text[i] == '\n') {
        ++line;
        column = 0;
      }
      const char32_t c = static_cast<unsigned char>(text[i]) >= 0x80 ? decode(text, i) : 0;
      if (unsafe_for_toml_parser(c)) {
        char hex[16];
        std::snprintf(hex, sizeof hex, "U+%04X", static_cast<unsigned>(c));
        throw ConfigError(source + ":" + std::to_string(line) + ":" + std::to_string(column) +
                          ": the character " + hex +
                          " is not supported in config files; give a path that contains it with its flag "
                          "(e.g. --data) instead");
      }
    }
  }
  enum class State { code, comment, basic, literal, multi_basic, multi_literal };
  State state = State::code;
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const auto starts = [&](std::string_view s) { return text.substr(i, s.size()) == s; };
    switch (state) {
      case State::code:
        if (static_cast<unsigned char>(c) >= 0x80) {
          throw ConfigError(source + ":" + std::to_string(line) + ":" + std::to_string(column) +
                            ": TOML syntax error: a non-ASCII character outside a string or comment; "
                            "keys, numbers and punctuation must be ASCII (put names in \"quotes\")");
        }
        if (c == '#')
          state = State::comment;
        else if (starts("\"\"\""))
          state = State::multi_basic, i += 2, column += 2;
        else if (starts("'''"))
          state = State::multi_literal, i += 2, column += 2;
        else if (c == '"')
          state = State::basic;
        else if (c == '\'')
          state = State::literal;
        break;
      case State::comment:
        if (c == '\n') state = State::code;
        break;
      case State::basic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n')
          ++i, ++column;
        else if (c == '"' || c == '\n')
          state = State::code;  // an unterminated string is the parser's to report
        break;
      case State::literal:
        if (c == '\'' || c == '\n') state = State::code;
        break;
      case State::multi_basic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n')
          ++i, ++column;
        else if (starts("\"\"\""))
          state = State::code, i += 2, column += 2;
        break;
      case State::multi_literal:
        if (starts("'''")) state = State::code, i += 2, column += 2;
        break;
    }
    // Columns count bytes; a line break resets them.
    if (i < text.size() && text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
}

}  // namespace backprop::config::detail
