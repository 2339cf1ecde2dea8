// Reading the safetensors format. A file is untrusted input: every number in it is checked against the file's
// real size before it is used, and nothing is allocated for tensor data until the whole header is known to
// describe exactly the bytes that follow it. The order of the checks is the order of docs/files.md.
#include <algorithm>
#include <backprop/io.hpp>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>

#include "data/byte_source.hpp"
#include "io/file.hpp"
#include "io/safetensors_format.hpp"

namespace backprop::io {
namespace {

using json = nlohmann::json;
constexpr const char* kWho = "load_safetensors";

template <class... Args>
[[noreturn]] void fail_at(const std::string& path, std::uint64_t byte, const Args&... args) {
  throw FileError(::backprop::detail::cat(kWho, ": '", path, "' byte ", byte, ": ", args...));
}

template <class... Args>
[[noreturn]] void fail_tensor(const std::string& path, const std::string& name, const Args&... args) {
  throw FileError(::backprop::detail::cat(kWho, ": '", path, "' tensor '", name, "': ", args...));
}

template <class... Args>
[[noreturn]] void fail_header(const std::string& path, const Args&... args) {
  throw FileError(::backprop::detail::cat(kWho, ": '", path, "' header: ", args...));
}

// Thrown from inside the JSON parser when an object repeats a key.
struct DuplicateKey {
  std::string key;
  std::string parent;  // the key of the enclosing object; empty at the top level
  std::size_t depth;
};

// `text` with every byte outside printable ASCII written as \xNN, so a message quoting a broken header is
// itself valid text.
std::string printable(const std::string& text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f) {
      out += c;
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", byte);
      out += hex;
    }
  }
  return out;
}

constexpr int kMaxHeaderDepth = 8;
struct TooDeep {};

// A first pass over the header that builds nothing: it refuses nesting deeper than kMaxHeaderDepth and
// repeated keys. JSON leaves repeated keys undefined and nlohmann keeps only one, so a file could otherwise
// show one tensor to backprop and another to a different reader. (nlohmann's parser callback would do the
// same checks while building, but it scans the enclosing object at the end of every object it reads: quadratic
// in the number of tensors.)
struct HeaderChecks {
  struct Object {
    std::set<std::string> keys;
    std::string last_key;
  };
  std::vector<Object> objects;  // the open objects, outermost first
  std::size_t open = 0;         // open objects and arrays

  bool open_one() {
    // A valid header nests 3 deep (header, entry, shape). Deeper input is refused at once, so a header of a
    // million '[' costs nothing.
    if (open >= static_cast<std::size_t>(kMaxHeaderDepth)) throw TooDeep{};
    ++open;
    return true;
  }
  bool start_object(std::size_t) {
    objects.emplace_back();
    return open_one();
  }
  bool end_object() {
    objects.pop_back();
    --open;
    return true;
  }
  bool start_array(std::size_t) { return open_one(); }
  bool end_array() {
    --open;
    return true;
  }
  bool key(std::string& key) {
    const std::size_t depth = objects.size() - 1;
    if (!objects.back().keys.insert(key).second)
      throw DuplicateKey{key, depth > 0 ? objects[depth - 1].last_key : std::string(), depth};
    objects.back().last_key = key;
    return true;
  }
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const std::string&) { return true; }
  bool string(std::string&) { return true; }
  bool binary(json::binary_t&) { return true; }
  // A syntax error stops this pass; the DOM parser then reports it, with its position.
  bool parse_error(std::size_t, const std::string&, const json::exception&) { return false; }
};

// Parses the header: the checks of HeaderChecks, then nlohmann's DOM parser (linear; it throws the typed
// parse errors the handlers below turn into messages).
json parse_header(const std::string& path, const std::string& text) {
  try {
    HeaderChecks checks;
    json::sax_parse(text, &checks);
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // e.byte counts the characters read, the offending one included.
    const std::uint64_t at = detail::kLengthBytes + (e.byte > 0 ? e.byte - 1 : 0);
    std::string why = e.what();
    if (const auto bracket = why.find("] "); bracket != std::string::npos) why.erase(0, bracket + 2);
    why = printable(why);
    fail_at(path, at, "the header is not valid UTF-8 JSON (", why, "); expected one JSON object");
  } catch (const json::out_of_range& e) {  // a number too large for any C++ type, e.g. 1E666666
    std::string why = e.what();
    if (const auto bracket = why.find("] "); bracket != std::string::npos) why.erase(0, bracket + 2);
    fail_header(path, "the header is not usable JSON (", printable(why),
                "); expected numbers that fit 64 bits");
  } catch (const json::exception& e) {  // any other refusal of the parser is still a bad file, not a crash
    fail_header(path, "the header is not usable JSON (", printable(e.what()), ")");
  } catch (const TooDeep&) {
    fail_header(path, "JSON nested more than ", kMaxHeaderDepth,
                " levels deep; a safetensors header needs 3");
  } catch (const DuplicateKey& d) {
    if (d.depth == 0)
      fail_header(path, "the name '", d.key, "' appears twice; each tensor name must be unique");
    fail_header(path, "the key '", d.key, "' appears twice inside '", d.parent, "'; keys must be unique");
  }
}

const char* json_kind(const json& v) {
  return v.type_name();
}

// A JSON non-negative integer (nlohmann reads those as unsigned; "-0" reads as a signed zero).
bool as_u64(const json& v, std::uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<std::uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
    out = static_cast<std::uint64_t>(v.get<std::int64_t>());
    return true;
  }
  return false;
}

struct Entry {
  std::string name;
  const detail::StoredDType* stored = nullptr;  // as in the file
  DType dtype = f32;                            // as loaded
  Shape shape;
  std::uint64_t elements = 0;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

const detail::StoredDType* parse_dtype(const std::string& path, const std::string& name, const json& v) {
  if (!v.is_string()) fail_tensor(path, name, "\"dtype\" is a JSON ", json_kind(v), ", expected a string");
  const auto& s = v.get_ref<const std::string&>();
  for (const detail::StoredDType& d : detail::kStoredDTypes)
    if (s == d.name) return &d;
  fail_tensor(path, name, "unsupported dtype '", s, "' (supported: F32, F64, F16, BF16, I64, I32, U8, BOOL)");
}

// Reads the elements of `e` (which start at file offset `at`) into t, widening F16/BF16/I32/U8. BOOL bytes
// must be 0 or 1.
void read_elements(const detail::InputFile& file, const std::string& path, const Entry& e, std::uint64_t at,
                   Tensor& t) {
  const std::string stored = e.stored->name;
  const auto n = static_cast<std::size_t>(e.elements);
  if (e.stored->bytes == dtype_size(e.dtype)) {  // F32, F64, I64, BOOL: the bytes as they are
    file.read_at(at, t.raw_data(), e.end - e.begin);
    if (e.dtype != bool_) return;
    const auto* b = static_cast<const unsigned char*>(t.raw_data());
    for (std::size_t i = 0; i < n; ++i)
      if (b[i] > 1)
        fail_tensor(path, e.name, "BOOL element ", i, " (file byte ", at + i, ") is ", int{b[i]},
                    "; expected 0 or 1");
    return;
  }
  std::vector<unsigned char> raw(static_cast<std::size_t>(e.end - e.begin));
  file.read_at(at, raw.data(), raw.size());
  auto load = [&](auto tag) {
    using U = decltype(tag);
    std::vector<U> v(n);
    std::memcpy(v.data(), raw.data(), raw.size());
    return v;
  };
  if (stored == "F16" || stored == "BF16") {
    const std::vector<std::uint16_t> v = load(std::uint16_t{});
    float* p = t.data<float>();
    for (std::size_t i = 0; i < n; ++i)
      p[i] = stored == "F16" ? detail::f16_to_f32(v[i]) : detail::bf16_to_f32(v[i]);
  } else if (stored == "I32") {
    const std::vector<std::int32_t> v = load(std::int32_t{});
    std::copy(v.begin(), v.end(), t.data<std::int64_t>());
  } else {  // U8
    std::copy(raw.begin(), raw.end(), t.data<std::int64_t>());
  }
}

// Reads "shape" and counts its elements. The count is 0 as soon as one dimension is 0, whatever the order of
// the others; otherwise every partial product is checked for overflow, so no shape can wrap around to a
// small count and pass the byte-count check.
void parse_shape(const std::string& path, Entry& e, const json& v) {
  if (!v.is_array()) fail_tensor(path, e.name, "\"shape\" is a JSON ", json_kind(v), ", expected an array");
  if (v.size() > kMaxRank)
    fail_tensor(path, e.name, "shape has ", v.size(), " dimensions, at most ", kMaxRank, " are supported");
  bool has_zero = false;
  for (std::size_t d = 0; d < v.size(); ++d) {
    std::uint64_t size = 0;
    if (!as_u64(v[d], size))
      fail_tensor(path, e.name, "shape entry ", d, " is ", v[d].dump(), ", expected a non-negative integer");
    if (size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      fail_tensor(path, e.name, "shape entry ", d, " is ", size,
                  ", more than the largest dimension 2^63 - 1");
    e.shape.push_back(static_cast<std::int64_t>(size));
    has_zero = has_zero || size == 0;
  }
  e.elements = has_zero ? 0 : 1;
  if (has_zero) return;
  for (std::int64_t size : e.shape) {
    if (__builtin_mul_overflow(e.elements, static_cast<std::uint64_t>(size), &e.elements) ||
        e.elements > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      fail_tensor(path, e.name, "shape ", e.shape, " has more elements than fit in a 64-bit signed count");
  }
}

Entry parse_entry(const std::string& path, const std::string& name, const json& v, std::uint64_t data_bytes) {
  Entry e{.name = name};
  if (!v.is_object()) fail_tensor(path, name, "the entry is a JSON ", json_kind(v), ", expected an object");
  for (const auto& [key, value] : v.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      fail_tensor(path, name, "unknown field '", key, "' (expected exactly dtype, shape, data_offsets)");
  }
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key))
      fail_tensor(path, name, "missing field '", key, "' (expected dtype, shape, data_offsets)");
  e.stored = parse_dtype(path, name, v["dtype"]);
  e.dtype = e.stored->loads_as;
  parse_shape(path, e, v["shape"]);

  const json& offsets = v["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !as_u64(offsets[0], e.begin) ||
      !as_u64(offsets[1], e.end))
    fail_tensor(path, name, "data_offsets is ", offsets.dump(),
                ", expected [begin, end] (two non-negative integers)");
  if (e.begin > e.end) fail_tensor(path, name, "data_offsets [", e.begin, ", ", e.end, "] has begin > end");
  std::uint64_t expected_bytes = 0;
  if (__builtin_mul_overflow(e.elements, e.stored->bytes, &expected_bytes))
    fail_tensor(path, name, "shape ", e.shape, " of ", e.stored->name,
                " holds more bytes than fit in 64 bits");
  if (e.end - e.begin != expected_bytes)
    fail_tensor(path, name, "shape ", e.shape, " of ", e.stored->name, " needs ", e.elements, " x ",
                e.stored->bytes, " = ", expected_bytes, " bytes, but data_offsets [", e.begin, ", ", e.end,
                "] span ", e.end - e.begin);
  if (e.end > data_bytes)
    fail_tensor(path, name, "data_offsets [", e.begin, ", ", e.end,
                "] run past the end of the data section (", data_bytes, " bytes)");
  return e;
}

std::uint32_t parse_checksum(const std::string& path, const std::string& text) {
  const std::string prefix = detail::kChecksumPrefix;
  const bool ok = text.size() == prefix.size() + 8 && text.starts_with(prefix) &&
                  std::all_of(text.begin() + static_cast<std::ptrdiff_t>(prefix.size()), text.end(),
                              [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
  if (!ok)
    fail_header(path, "metadata '", kChecksumKey, "' is '", text, "', expected '", prefix,
                "' followed by 8 hex digits");
  return static_cast<std::uint32_t>(std::stoul(text.substr(prefix.size()), nullptr, 16));
}

// A tensor with no elements. backprop::numel() multiplies dimensions in order and so rejects [2^32, 2^32, 0],
// which is a valid shape holding nothing; the handle is built directly instead.
Tensor empty_tensor(const Shape& shape, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(0);
  impl->shape = shape;
  impl->numel = 0;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

// What the first bytes of a file that is not safetensors look like, or "" when they match nothing known.
// The kinds any data file can be mistaken for (HTML, Git LFS pointers, archives) come from the data readers'
// describe_wrong_file.
std::string lookalike(std::string_view head) {
  if (head.starts_with("\x1f\x8b")) return "a gzip-compressed file; decompress it first";
  if (head.starts_with("PK\x03\x04"))
    return "a zip archive, such as a PyTorch .pt/.pth file written by torch.save";
  if (head.size() >= 2 && head[0] == '\x80' && head[1] >= 2 && head[1] <= 5)
    return "a Python pickle, such as a PyTorch .pt/.pth file written by an old torch.save";
  if (head.starts_with("\x93NUMPY")) return "a NumPy .npy array";
  if (head.starts_with("\x89HDF\r\n")) return "an HDF5 file, such as a Keras .h5 model";
  const std::string shared =
      data::detail::describe_wrong_file(reinterpret_cast<const unsigned char*>(head.data()), head.size());
  if (!shared.empty()) return shared;
  const bool is_text = !head.empty() && std::all_of(head.begin(), head.end(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return b >= 0x20 || b == '\n' || b == '\r' || b == '\t';  // bytes >= 0x80: UTF-8 text
  });
  if (!is_text) return "";
  std::string_view text = head;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  if (text.starts_with("{") || text.starts_with("[")) return "JSON text";
  return "text";
}

}  // namespace

NamedTensors load_safetensors(const std::string& path) {
  const detail::InputFile file(path, kWho);
  const std::uint64_t size = file.size();
  std::string head(static_cast<std::size_t>(std::min<std::uint64_t>(size, 512)), '\0');
  file.read_at(0, head.data(), head.size());
  std::uint64_t header_bytes = 0;
  for (std::size_t b = 0; b < detail::kLengthBytes && b < head.size(); ++b)
    header_bytes |= std::uint64_t{static_cast<unsigned char>(head[b])} << (8 * b);
  // A file that cannot be safetensors (too short, an impossible header length, or a header that does not open
  // a JSON object) says what else it looks like before any number in it is quoted. A valid file never gets
  // here, so it is never named something else.
  const std::size_t opening = head.find_first_not_of(" \t\r\n", detail::kLengthBytes);
  if (size < detail::kLengthBytes || header_bytes > kMaxHeaderBytes ||
      header_bytes > size - detail::kLengthBytes || (opening != std::string::npos && head[opening] != '{'))
    if (const std::string kind = lookalike(head); !kind.empty())
      throw FileError(::backprop::detail::cat(kWho, ": '", path,
                                              "' is not a safetensors file (it looks like ", kind, ")"));
  if (size < detail::kLengthBytes)
    fail_at(path, 0, "the file is ", size, " bytes, expected at least 8 (the header length)");

  if (header_bytes > kMaxHeaderBytes)
    fail_at(path, 0, "header length ", header_bytes, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  if (header_bytes > size - detail::kLengthBytes)
    fail_at(path, 0, "header length ", header_bytes, " runs past the end of the file (",
            size - detail::kLengthBytes, " bytes follow the length)");

  std::string text(header_bytes, '\0');
  file.read_at(detail::kLengthBytes, text.data(), text.size());
  const json header = parse_header(path, text);
  if (!header.is_object())
    fail_at(path, detail::kLengthBytes, "the header is a JSON ", json_kind(header), ", expected an object");

  const std::uint64_t data_start = detail::kLengthBytes + header_bytes;
  const std::uint64_t data_bytes = size - data_start;
  NamedTensors out;
  std::optional<std::string> checksum;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key != detail::kMetadataKey) {
      entries.push_back(parse_entry(path, key, value, data_bytes));
      continue;
    }
    if (!value.is_object())
      fail_header(path, "\"", detail::kMetadataKey, "\" is a JSON ", json_kind(value),
                  ", expected an object");
    for (const auto& [mkey, mvalue] : value.items()) {
      if (!mvalue.is_string())
        fail_header(path, "metadata '", mkey, "' is a JSON ", json_kind(mvalue), ", expected a string");
      if (mkey == kChecksumKey)
        checksum = mvalue.get<std::string>();
      else
        out.metadata[mkey] = mvalue.get<std::string>();
    }
  }

  // The byte ranges must tile the data section: sorted, each starts where the previous ended (zero-length
  // ranges sort first at their offset), the first at 0, the last at the end of the file.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin > expected)
      fail_at(path, data_start + expected, "gap of ", e.begin - expected, " bytes before tensor '", e.name,
              "' (data_offsets begin at ", e.begin, ", expected ", expected,
              previous ? " where '" + previous->name + "' ends" : std::string(" for the first tensor"), ")");
    if (e.begin < expected)
      fail_at(path, data_start + e.begin, "tensor '", e.name, "' (data_offsets [", e.begin, ", ", e.end,
              "]) overlaps tensor '", previous->name, "' (which ends at ", expected, ")");
    expected = e.end;
    previous = &e;
  }
  if (expected != data_bytes)
    fail_at(path, data_start + expected, "the tensors end here but the file goes on for ",
            data_bytes - expected, " more bytes; expected the data to end exactly at the end of the file (",
            size, " bytes)");

  // Only now, with every size proven to fit in the file, are tensors allocated and read.
  for (const Entry& e : entries) {
    Tensor t = e.elements == 0 ? empty_tensor(e.shape, e.dtype) : Tensor(e.shape, e.dtype);
    read_elements(file, path, e, data_start + e.begin, t);
    out.tensors.emplace_back(e.name, std::move(t));
  }
  if (checksum) {
    const std::uint32_t recorded = parse_checksum(path, *checksum);
    const std::uint32_t actual = detail::content_checksum(out.tensors, out.metadata);
    if (recorded != actual)
      fail_header(path, "checksum mismatch: the names, shapes, metadata and data (bytes ", data_start, " to ",
                  size, ") have ", detail::format_checksum(actual), " but the header records ",
                  detail::format_checksum(recorded), "; the file is corrupt");
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Tensor& t = out.tensors[i].second;
    const std::int64_t bad = detail::first_non_finite(t);
    if (bad >= 0)
      fail_tensor(path, entries[i].name, "element ", bad, " (index ", detail::index_text(t.shape(), bad),
                  ", file byte ",
                  data_start + entries[i].begin + static_cast<std::uint64_t>(bad) * entries[i].stored->bytes,
                  ") is ", t.flat(bad), "; expected finite values");
  }
  return out;
}

}  // namespace backprop::io
