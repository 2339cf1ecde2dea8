#include <backprop/device.hpp>
#include <backprop/error.hpp>
#include <charconv>

namespace backprop {

Device::Device(DeviceKind kind, int index) : kind_(kind), index_(kind == DeviceKind::cpu ? 0 : index) {
  BP_CHECK(index >= 0, ValueError, "device index must be >= 0, got ", index);
}

Device Device::parse(std::string_view text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  constexpr std::string_view prefix = "cuda:";
  if (text.starts_with(prefix)) {
    const std::string_view digits = text.substr(prefix.size());
    int index = -1;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (!digits.empty() && ec == std::errc() && end == digits.data() + digits.size() && index >= 0)
      return cuda(index);
  }
  throw ValueError(detail::cat("unknown device '", text, "': expected cpu, cuda or cuda:N (N = 0, 1, ...)"));
}

std::string Device::to_string() const {
  return is_cpu() ? "cpu" : "cuda:" + std::to_string(index_);
}

std::ostream& operator<<(std::ostream& out, Device device) {
  return out << device.to_string();
}

void check_same_device(const char* op, Device a, Device b) {
  BP_CHECK(a == b, DeviceError, op, ": inputs are on different devices (", a, " and ", b,
           "); move one with .to(", b, ") or .to(", a, ")");
}

}  // namespace backprop
