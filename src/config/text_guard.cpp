#include "config/text_guard.hpp"

#include <backprop/error.hpp>

namespace backprop::config::detail {

void check_non_ascii_outside_strings(std::string_view text, const std::string& source) {
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
