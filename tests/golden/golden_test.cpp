// Every op against PyTorch's values: outputs, first derivatives and Hessian-vector products, read from
// ops_golden.json (written by make_golden.py, inputs included), plus a small network end to end.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace bp = backprop;
using json = nlohmann::json;

namespace {

const json& golden() {
  static const json data = [] {
    const std::string path = std::string(BACKPROP_SOURCE_DIR) + "/tests/golden/ops_golden.json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    return json::parse(in);
  }();
  return data;
}

bp::Tensor decode(const json& j, bp::DType dtype) {
  const bp::Shape shape = j.at("shape").get<bp::Shape>();
  const std::vector<double> data = j.at("data").get<std::vector<double>>();
  bp::Tensor t = bp::from_vector(data, shape.empty() ? bp::Shape{1} : shape, dtype);
  return shape.empty() ? t.reshape({}) : t;
}

using OpFn = std::function<bp::Tensor(const bp::Tensors&, const json&)>;

std::int64_t dim(const json& a, const char* key) {
  return a.at(key).get<std::int64_t>();
}

/// A [h, w] list of the args as a spatial size.
bp::Size2 pair(const json& a, const char* key) {
  const auto v = a.at(key).get<std::vector<std::int64_t>>();
  return bp::Size2(v.at(0), v.at(1));
}

/// A nested JSON list of whole numbers as an index tensor in x's dtype.
bp::Tensor index_tensor(const json& j, const bp::Tensor& like) {
  bp::Shape shape;
  for (const json* p = &j; p->is_array(); p = &p->at(0))
    shape.push_back(static_cast<std::int64_t>(p->size()));
  std::vector<double> flat;
  std::function<void(const json&)> walk = [&](const json& e) {
    if (e.is_array())
      for (const json& c : e) walk(c);
    else
      flat.push_back(e.get<double>());
  };
  walk(j);
  return bp::from_vector(flat, shape, like.dtype());
}

/// The C++ side of make_golden.py's OPS table: the same names, the same arguments.
const std::map<std::string, OpFn>& ops() {
  static const std::map<std::string, OpFn> table = {
      {"add", [](const bp::Tensors& x, const json&) { return bp::add(x[0], x[1]); }},
      {"sub", [](const bp::Tensors& x, const json&) { return bp::sub(x[0], x[1]); }},
      {"mul", [](const bp::Tensors& x, const json&) { return bp::mul(x[0], x[1]); }},
      {"div", [](const bp::Tensors& x, const json&) { return bp::div(x[0], x[1]); }},
      {"maximum", [](const bp::Tensors& x, const json&) { return bp::maximum(x[0], x[1]); }},
      {"add_scalar",
       [](const bp::Tensors& x, const json& a) { return bp::add(x[0], a.at("b").get<double>()); }},
      {"mul_scalar",
       [](const bp::Tensors& x, const json& a) { return bp::mul(x[0], a.at("b").get<double>()); }},
      {"rsub", [](const bp::Tensors& x, const json& a) { return bp::rsub(x[0], a.at("b").get<double>()); }},
      {"rdiv", [](const bp::Tensors& x, const json& a) { return bp::rdiv(x[0], a.at("b").get<double>()); }},
      {"neg", [](const bp::Tensors& x, const json&) { return bp::neg(x[0]); }},
      {"exp", [](const bp::Tensors& x, const json&) { return bp::exp(x[0]); }},
      {"log", [](const bp::Tensors& x, const json&) { return bp::log(x[0]); }},
      {"pow", [](const bp::Tensors& x, const json& a) { return bp::pow(x[0], a.at("p").get<double>()); }},
      {"sqrt", [](const bp::Tensors& x, const json&) { return bp::sqrt(x[0]); }},
      {"abs", [](const bp::Tensors& x, const json&) { return bp::abs(x[0]); }},
      {"clamp",
       [](const bp::Tensors& x, const json& a) {
         return bp::clamp(x[0], a.at("lo").get<double>(), a.at("hi").get<double>());
       }},
      {"sigmoid", [](const bp::Tensors& x, const json&) { return bp::sigmoid(x[0]); }},
      {"tanh", [](const bp::Tensors& x, const json&) { return bp::tanh(x[0]); }},
      {"relu", [](const bp::Tensors& x, const json&) { return bp::relu(x[0]); }},
      {"leaky_relu",
       [](const bp::Tensors& x, const json& a) { return bp::leaky_relu(x[0], a.at("slope").get<double>()); }},
      {"masked_scale",
       [](const bp::Tensors& x, const json& a) {
         return bp::masked_scale(x[0], x[1], a.at("scale").get<double>());
       }},
      {"sum", [](const bp::Tensors& x, const json&) { return bp::sum(x[0]); }},
      {"sum_axis",
       [](const bp::Tensors& x, const json& a) {
         return bp::sum(x[0], a.at("axis").get<std::int64_t>(), a.at("keepdim").get<bool>());
       }},
      {"mean", [](const bp::Tensors& x, const json&) { return bp::mean(x[0]); }},
      {"mean_axis",
       [](const bp::Tensors& x, const json& a) {
         return bp::mean(x[0], a.at("axis").get<std::int64_t>(), a.at("keepdim").get<bool>());
       }},
      {"max_axis",
       [](const bp::Tensors& x, const json& a) {
         return bp::max(x[0], a.at("axis").get<std::int64_t>(), a.at("keepdim").get<bool>());
       }},
      {"sum_to",
       [](const bp::Tensors& x, const json& a) { return bp::sum_to(x[0], a.at("shape").get<bp::Shape>()); }},
      {"broadcast_to", [](const bp::Tensors& x,
                          const json& a) { return bp::broadcast_to(x[0], a.at("shape").get<bp::Shape>()); }},
      {"mm",
       [](const bp::Tensors& x, const json& a) {
         return bp::mm(x[0], x[1], a.at("ta").get<bool>(), a.at("tb").get<bool>());
       }},
      {"linear", [](const bp::Tensors& x,
                    const json&) { return bp::linear(x[0], x[1], x.size() > 2 ? x[2] : bp::Tensor()); }},
      {"transpose", [](const bp::Tensors& x, const json&) { return bp::transpose(x[0]); }},
      {"reshape",
       [](const bp::Tensors& x, const json& a) { return bp::reshape(x[0], a.at("shape").get<bp::Shape>()); }},
      {"narrow",
       [](const bp::Tensors& x, const json& a) {
         return bp::narrow(x[0], a.at("start").get<std::int64_t>(), a.at("length").get<std::int64_t>());
       }},
      {"index_select",
       [](const bp::Tensors& x, const json& a) {
         return bp::index_select(x[0], a.at("indices").get<std::vector<std::int64_t>>());
       }},
      {"concat", [](const bp::Tensors& x, const json&) { return bp::concat(x); }},
      {"softmax", [](const bp::Tensors& x,
                     const json& a) { return bp::softmax(x[0], a.at("axis").get<std::int64_t>()); }},
      {"log_softmax", [](const bp::Tensors& x,
                         const json& a) { return bp::log_softmax(x[0], a.at("axis").get<std::int64_t>()); }},
      {"sum_dims",
       [](const bp::Tensors& x, const json& a) {
         return bp::sum(x[0], a.at("dims").get<bp::Dims>(), a.at("keepdim").get<bool>());
       }},
      {"mean_dims",
       [](const bp::Tensors& x, const json& a) {
         return bp::mean(x[0], a.at("dims").get<bp::Dims>(), a.at("keepdim").get<bool>());
       }},
      {"amax",
       [](const bp::Tensors& x, const json& a) {
         return bp::amax(x[0], a.at("dims").get<bp::Dims>(), a.at("keepdim").get<bool>());
       }},
      {"amin",
       [](const bp::Tensors& x, const json& a) {
         return bp::amin(x[0], a.at("dims").get<bp::Dims>(), a.at("keepdim").get<bool>());
       }},
      {"logsumexp",
       [](const bp::Tensors& x, const json& a) {
         return bp::logsumexp(x[0], a.at("dims").get<bp::Dims>(), a.at("keepdim").get<bool>());
       }},
      {"var",
       [](const bp::Tensors& x, const json& a) {
         return bp::var(x[0], a.at("dims").get<bp::Dims>(), a.at("correction").get<double>(),
                        a.at("keepdim").get<bool>());
       }},
      {"std",
       [](const bp::Tensors& x, const json& a) {
         return bp::std(x[0], a.at("dims").get<bp::Dims>(), a.at("correction").get<double>(),
                        a.at("keepdim").get<bool>());
       }},
      {"norm",
       [](const bp::Tensors& x, const json& a) {
         // JSON has no infinity: the script writes p = inf as the string "inf".
         const double p = a.at("p").is_string() ? std::stod(a.at("p").get<std::string>()) : a.at("p").get<double>();
         return bp::norm(x[0], p, a.at("dims").get<bp::Dims>(), a.at("keepdim").get<bool>());
       }},
      {"max_dim",
       [](const bp::Tensors& x, const json& a) {
         return bp::max_with_indices(x[0], a.at("dim").get<std::int64_t>(), a.at("keepdim").get<bool>()).values;
       }},
      {"min_dim",
       [](const bp::Tensors& x, const json& a) {
         return bp::min_with_indices(x[0], a.at("dim").get<std::int64_t>(), a.at("keepdim").get<bool>()).values;
       }},
      {"topk",
       [](const bp::Tensors& x, const json& a) {
         return bp::topk(x[0], a.at("k").get<std::int64_t>(), a.at("dim").get<std::int64_t>(),
                         a.at("largest").get<bool>())
             .values;
       }},
      // ---- shape and indexing ops on any dim ----
      {"permute", [](const bp::Tensors& x,
                     const json& a) { return bp::permute(x[0], a.at("dims").get<std::vector<std::int64_t>>()); }},
      {"transpose_dims",
       [](const bp::Tensors& x, const json& a) { return bp::transpose(x[0], dim(a, "d0"), dim(a, "d1")); }},
      {"squeeze",
       [](const bp::Tensors& x, const json& a) {
         return a.contains("dim") ? bp::squeeze(x[0], dim(a, "dim")) : bp::squeeze(x[0]);
       }},
      {"unsqueeze", [](const bp::Tensors& x, const json& a) { return bp::unsqueeze(x[0], dim(a, "dim")); }},
      {"flatten",
       [](const bp::Tensors& x, const json& a) { return bp::flatten(x[0], dim(a, "start"), dim(a, "end")); }},
      {"unflatten",
       [](const bp::Tensors& x, const json& a) {
         return bp::unflatten(x[0], dim(a, "dim"), a.at("sizes").get<bp::Shape>());
       }},
      {"narrow_dim",
       [](const bp::Tensors& x, const json& a) {
         return bp::narrow(x[0], dim(a, "dim"), dim(a, "start"), dim(a, "length"));
       }},
      {"slice",
       [](const bp::Tensors& x, const json& a) {
         return bp::slice(x[0], dim(a, "dim"), dim(a, "start"), dim(a, "end"), dim(a, "step"));
       }},
      {"expand",
       [](const bp::Tensors& x, const json& a) { return bp::expand(x[0], a.at("shape").get<bp::Shape>()); }},
      {"cat", [](const bp::Tensors& x, const json& a) { return bp::cat(x, dim(a, "dim")); }},
      {"stack", [](const bp::Tensors& x, const json& a) { return bp::stack(x, dim(a, "dim")); }},
      {"split",
       [](const bp::Tensors& x, const json& a) {
         const json& size = a.at("size");
         const bp::Tensors parts = size.is_array()
                                       ? bp::split(x[0], size.get<std::vector<std::int64_t>>(), dim(a, "dim"))
                                       : bp::split(x[0], size.get<std::int64_t>(), dim(a, "dim"));
         return parts.at(a.at("piece").get<std::size_t>());
       }},
      {"chunk",
       [](const bp::Tensors& x, const json& a) {
         return bp::chunk(x[0], dim(a, "chunks"), dim(a, "dim")).at(a.at("piece").get<std::size_t>());
       }},
      {"index_select_dim",
       [](const bp::Tensors& x, const json& a) {
         return bp::index_select(x[0], dim(a, "dim"), index_tensor(a.at("index"), x[0]));
       }},
      {"index_add",
       [](const bp::Tensors& x, const json& a) {
         return bp::index_add(x[0], dim(a, "dim"), a.at("index").get<std::vector<std::int64_t>>(), x[1]);
       }},
      {"gather",
       [](const bp::Tensors& x, const json& a) {
         return bp::gather(x[0], dim(a, "dim"), index_tensor(a.at("index"), x[0]));
       }},
      {"scatter_add",
       [](const bp::Tensors& x, const json& a) {
         return bp::scatter_add(x[0], dim(a, "dim"), index_tensor(a.at("index"), x[0]), x[1]);
       }},
      {"tril", [](const bp::Tensors& x, const json& a) { return bp::tril(x[0], dim(a, "k")); }},
      {"triu", [](const bp::Tensors& x, const json& a) { return bp::triu(x[0], dim(a, "k")); }},
      {"pad",
       [](const bp::Tensors& x, const json& a) {
         const bp::PadMode mode = a.at("mode") == "reflect" ? bp::PadMode::reflect : bp::PadMode::constant;
         return bp::pad(x[0], a.at("pads").get<std::vector<std::int64_t>>(), mode, a.at("value").get<double>());
       }},
      {"conv2d",
       [](const bp::Tensors& x, const json& a) {
         const bp::ConvPadding padding = a.at("padding").is_string()
                                             ? bp::ConvPadding(a.at("padding").get<std::string>())
                                             : bp::ConvPadding(pair(a, "padding"));
         return bp::conv2d(x[0], x[1], x.size() > 2 ? x[2] : bp::Tensor(), pair(a, "stride"), padding,
                           pair(a, "dilation"), dim(a, "groups"));
       }},
      {"conv1d",
       [](const bp::Tensors& x, const json& a) {
         const bp::ConvPadding padding = a.at("padding").is_string()
                                             ? bp::ConvPadding(a.at("padding").get<std::string>())
                                             : bp::ConvPadding(dim(a, "padding"));
         return bp::conv1d(x[0], x[1], x.size() > 2 ? x[2] : bp::Tensor(), dim(a, "stride"), padding,
                           dim(a, "dilation"), dim(a, "groups"));
       }},
      {"conv_transpose2d",
       [](const bp::Tensors& x, const json& a) {
         return bp::conv_transpose2d(x[0], x[1], x.size() > 2 ? x[2] : bp::Tensor(), pair(a, "stride"),
                                     pair(a, "padding"), pair(a, "output_padding"), dim(a, "groups"),
                                     pair(a, "dilation"));
       }},
      {"max_pool2d",
       [](const bp::Tensors& x, const json& a) {
         return bp::max_pool2d(x[0], pair(a, "kernel"), pair(a, "stride"), pair(a, "padding"), pair(a, "dilation"),
                               a.at("ceil_mode").get<bool>());
       }},
      {"avg_pool2d",
       [](const bp::Tensors& x, const json& a) {
         return bp::avg_pool2d(x[0], pair(a, "kernel"), pair(a, "stride"), pair(a, "padding"),
                               a.at("ceil_mode").get<bool>(), a.at("count_include_pad").get<bool>());
       }},
      {"adaptive_avg_pool2d",
       [](const bp::Tensors& x, const json& a) { return bp::adaptive_avg_pool2d(x[0], pair(a, "output_size")); }},
      // ---- where, masked_fill, clamp with tensor bounds, matmul, bmm, einsum ----
      {"where", [](const bp::Tensors& x, const json&) { return bp::where(x[0], x[1], x[2]); }},
      {"masked_fill",
       [](const bp::Tensors& x, const json& a) { return bp::masked_fill(x[0], x[1], a.at("value").get<double>()); }},
      {"clamp_tensor",
       [](const bp::Tensors& x, const json& a) {
         std::size_t next = 1;
         const bp::Tensor lo = a.at("min").get<bool>() ? x.at(next++) : bp::Tensor();
         const bp::Tensor hi = a.at("max").get<bool>() ? x.at(next++) : bp::Tensor();
         return bp::clamp(x[0], lo, hi);
       }},
      {"matmul", [](const bp::Tensors& x, const json&) { return bp::matmul(x[0], x[1]); }},
      {"bmm", [](const bp::Tensors& x, const json&) { return bp::bmm(x[0], x[1]); }},
      {"einsum",
       [](const bp::Tensors& x, const json& a) { return bp::einsum(a.at("equation").get<std::string>(), x); }},
      // ---- embedding ----
      {"embedding",
       [](const bp::Tensors& x, const json& a) {
         const json& pad = a.at("padding_idx");
         return bp::embedding(bp::to_dtype(index_tensor(a.at("indices"), x[0]), bp::i64), x[0],
                              pad.is_null() ? std::nullopt : std::optional<std::int64_t>(pad.get<std::int64_t>()));
       }},
  };
  return table;
}

std::string describe(const json& c) {
  return c.at("op").get<std::string>() + " " + c.at("args").dump();
}

/// |got - want| <= atol + rtol |want| element by element, with the case and the element named on failure.
void expect_close(const bp::Tensor& got, const json& want_json, double rtol, double atol,
                  const std::string& what) {
  const bp::Tensor want = decode(want_json, bp::f64);
  ASSERT_EQ(got.shape(), want.shape()) << what;
  double scale = 0;  // f32 errors are relative to the largest magnitude, not to each element
  for (std::int64_t k = 0; k < want.numel(); ++k) scale = std::max(scale, std::abs(want.flat(k)));
  for (std::int64_t k = 0; k < want.numel(); ++k)
    ASSERT_NEAR(got.flat(k), want.flat(k),
                atol + rtol * std::max(std::abs(want.flat(k)), atol > 1e-9 ? scale : 0.0))
        << what << " at flat index " << k;
}

struct Result {
  bp::Tensor output;
  bp::Tensors grads, hvps;
};

/// Evaluates one case in `dtype`: the output, the gradients of <v, y> and d/dx <u, d<v, y>/dx>.
Result evaluate(const json& c, bp::DType dtype) {
  bp::Tensors xs;
  const auto& inputs = c.at("inputs");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    bp::Tensor x = decode(inputs[i], dtype);
    if (c.at("requires_grad")[i].get<bool>()) x.requires_grad_();
    xs.push_back(x);
  }
  Result r;
  r.output = ops().at(c.at("op").get<std::string>())(xs, c.at("args"));
  bp::Tensors wrt;
  for (const bp::Tensor& x : xs)
    if (x.requires_grad()) wrt.push_back(x);
  const bp::Tensor projected = bp::sum(bp::mul(r.output, decode(c.at("v"), r.output.dtype())));
  const bp::Tensors g = bp::grad({projected}, wrt, {.create_graph = true, .allow_unused = true});
  bp::Tensor s = bp::zeros({}, dtype);
  for (std::size_t i = 0, k = 0; i < xs.size(); ++i) {
    if (!xs[i].requires_grad()) continue;
    if (g[k].defined()) s = s + bp::sum(g[k] * decode(c.at("u")[i], dtype));
    ++k;
  }
  bp::Tensors h(wrt.size());
  if (s.requires_grad()) h = bp::grad({s}, wrt, {.allow_unused = true});
  for (std::size_t i = 0, k = 0; i < xs.size(); ++i) {
    if (!xs[i].requires_grad()) {
      r.grads.emplace_back();
      r.hvps.emplace_back();
      continue;
    }
    r.grads.push_back(g[k].defined() ? g[k] : bp::zeros_like(xs[i]));
    r.hvps.push_back(h[k].defined() ? h[k] : bp::zeros_like(xs[i]));
    ++k;
  }
  return r;
}

void check_case(const json& c, bp::DType dtype, double rtol, double atol) {
  const std::string name = describe(c) + " in " + bp::dtype_name(dtype);
  const Result r = evaluate(c, dtype);
  expect_close(r.output, c.at("output"), rtol, atol, name + ": output");
  for (std::size_t i = 0; i < r.grads.size(); ++i) {
    if (!r.grads[i].defined()) continue;
    expect_close(r.grads[i], c.at("grads")[i], rtol, atol, name + ": gradient of input " + std::to_string(i));
    expect_close(r.hvps[i], c.at("hvp")[i], rtol, atol,
                 name + ": second-order term of input " + std::to_string(i));
  }
}

}  // namespace

TEST(Golden, FileCoversEveryOpTheTestKnows) {
  std::set<std::string> in_file;
  for (const json& c : golden().at("cases")) {
    const std::string op = c.at("op").get<std::string>();
    EXPECT_TRUE(ops().count(op)) << "the golden file has op '" << op << "' which this test cannot run";
    in_file.insert(op);
  }
  for (const auto& [name, fn] : ops())
    EXPECT_TRUE(in_file.count(name)) << "no golden case for op '" << name << "'";
  EXPECT_GE(golden().at("cases").size(), 60u);
}

TEST(Golden, EveryOpMatchesTheReferenceInF64) {
  for (const json& c : golden().at("cases")) {
    SCOPED_TRACE(describe(c));
    check_case(c, bp::f64, 1e-10, 1e-12);
  }
}

TEST(Golden, EveryOpMatchesTheReferenceInF32) {
  for (const json& c : golden().at("cases")) {
    SCOPED_TRACE(describe(c));
    check_case(c, bp::f32, 2e-5, 1e-5);
  }
}

TEST(Golden, SigmoidNetworkEndToEnd) {
  const json& m = golden().at("mlp");
  const bp::Tensor x = decode(m.at("x"), bp::f64);
  const std::vector<double> labels = m.at("labels").get<std::vector<double>>();
  const bp::Tensor onehot = bp::one_hot(bp::from_vector(labels), 3, bp::f64);
  bp::Tensors params;
  for (const json& p : m.at("params")) params.push_back(decode(p, bp::f64).requires_grad_());
  auto forward = [&](const bp::Tensors& p) {
    const bp::Tensor h = bp::sigmoid(bp::linear(x, p[0], p[1]));
    const bp::Tensor logits = bp::linear(h, p[2], p[3]);
    const bp::Tensor loss = bp::mean(bp::neg(bp::sum(onehot * bp::log_softmax(logits, 1), 1)));
    return std::make_pair(logits, loss);
  };
  const auto [logits, loss] = forward(params);
  expect_close(logits, m.at("logits"), 1e-12, 1e-13, "logits");
  EXPECT_NEAR(loss.item(), m.at("loss").get<double>(), 1e-13);

  const bp::Tensors g = bp::grad({loss}, params, {.create_graph = true});
  bp::Tensor gv = bp::scalar(0.0, bp::f64);
  for (std::size_t i = 0; i < g.size(); ++i) {
    expect_close(g[i], m.at("grads")[i], 1e-10, 1e-13, "gradient of parameter " + std::to_string(i));
    gv = gv + bp::sum(g[i] * decode(m.at("direction")[i], bp::f64));
  }
  const bp::Tensors hv = bp::grad({gv}, params);
  for (std::size_t i = 0; i < hv.size(); ++i)
    expect_close(hv[i], m.at("hvp")[i], 1e-9, 1e-12,
                 "Hessian-vector product, parameter " + std::to_string(i));

  // Five steps of w <- w - lr dC/dw reproduce the reference loss curve.
  const double lr = m.at("learning_rate").get<double>();
  const std::vector<double> curve = m.at("loss_curve").get<std::vector<double>>();
  bp::Tensors p;
  for (const bp::Tensor& q : params) p.push_back(q.detach().clone().requires_grad_());
  for (std::size_t step = 0; step < curve.size(); ++step) {
    const bp::Tensor l = forward(p).second;
    EXPECT_NEAR(l.item(), curve[step], 1e-11) << "step " << step;
    l.backward();
    bp::NoGradGuard guard;
    for (bp::Tensor& q : p) {
      q.add_(q.grad(), -lr);
      q.zero_grad();
    }
  }
  EXPECT_LT(curve.back(), curve.front()) << "the reference itself trains";
}

TEST(Golden, SecondDerivativesThroughACheckpointedSegment) {
  // make_golden.py's checkpoint_case: h = tanh(W0 x), y = checkpoint(tanh(W2 tanh(W1 h + b1) + b2)) with the
  // weights captured, loss = sum(y * y) + mean(exp(y)); gradients and a Hessian-vector product over x and all
  // weights, against PyTorch's non-reentrant checkpoint.
  const json& c = golden().at("checkpoint");
  const bp::Tensor x = decode(c.at("x"), bp::f64).requires_grad_();
  bp::Tensors params;
  for (const json& p : c.at("params")) params.push_back(decode(p, bp::f64).requires_grad_());
  const bp::Tensor h = bp::tanh(bp::linear(x, params[0]));
  const bp::Tensor y = bp::checkpoint(
      [&params](const bp::Tensors& in) {
        return bp::tanh(bp::linear(bp::tanh(bp::linear(in[0], params[1], params[2])), params[3], params[4]));
      },
      {h});
  const bp::Tensor loss = bp::sum(y * y) + bp::mean(bp::exp(y));
  EXPECT_NEAR(loss.item(), c.at("loss").get<double>(), 1e-13);

  bp::Tensors wrt = {x};
  wrt.insert(wrt.end(), params.begin(), params.end());
  const bp::Tensors g = bp::grad({loss}, wrt, {.create_graph = true});
  bp::Tensor gv = bp::scalar(0.0, bp::f64);
  for (std::size_t i = 0; i < g.size(); ++i) {
    expect_close(g[i], c.at("grads")[i], 1e-10, 1e-13, "gradient " + std::to_string(i));
    gv = gv + bp::sum(g[i] * decode(c.at("direction")[i], bp::f64));
  }
  const bp::Tensors hv = bp::grad({gv}, wrt);
  for (std::size_t i = 0; i < hv.size(); ++i)
    expect_close(hv[i], c.at("hvp")[i], 1e-10, 1e-12, "Hessian-vector product " + std::to_string(i));
}
