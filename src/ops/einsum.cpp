// einsum as a chain of batched matrix products: the operands are contracted left to right, each pair brought to
// [batch, rows, inner] x [batch, inner, cols] by sum, expand, permute and reshape and multiplied with mm. No
// backward of its own: the gradient is that of the ops it is made of.
#include <algorithm>
#include <backprop/ops.hpp>
#include <set>
#include <string>

namespace backprop {

namespace {

// A label per dim: 'A'..'Z' are 0..25, 'a'..'z' 26..51 (so sorting labels sorts as ASCII, as PyTorch orders an
// implicit output), and the dims covered by "..." are 52, 53, ... right-aligned across operands.
constexpr int kEllipsis = 52;

int label_of(char ch) {
  return ch >= 'A' && ch <= 'Z' ? ch - 'A' : ch - 'a' + 26;
}

std::string label_name(int label) {
  if (label >= kEllipsis) return "... dim " + std::to_string(label - kEllipsis);
  return std::string(1, static_cast<char>(label < 26 ? 'A' + label : 'a' + label - 26));
}

using Labels = std::vector<int>;

struct Term {
  Tensor t;
  Labels labels;  // one per dim of t
};

bool has(const Labels& labels, int label) {
  return std::find(labels.begin(), labels.end(), label) != labels.end();
}

/// One operand's or the output's subscripts: letters in order, and where "..." stands (-1: nowhere).
struct Subscripts {
  Labels letters;
  std::ptrdiff_t ellipsis_at = -1;
};

Subscripts parse_term(const std::string& eq, const std::string& text, const std::string& what) {
  Subscripts s;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
      BP_CHECK(!has(s.letters, label_of(ch)), ValueError, "einsum('", eq, "'): subscript '", ch,
               "' repeats in ", what, " ('", text, "'); repeated subscripts (diagonals) are not supported");
      s.letters.push_back(label_of(ch));
    } else if (ch == '.') {
      BP_CHECK(text.compare(i, 3, "...") == 0 && s.ellipsis_at < 0, ValueError, "einsum('", eq, "'): ", what,
               " ('", text, "') has a '.' that is not part of a single '...'");
      s.ellipsis_at = static_cast<std::ptrdiff_t>(s.letters.size());
      i += 2;
    } else {
      BP_CHECK(false, ValueError, "einsum('", eq, "'): ", what, " ('", text, "') has the character '", ch,
               "'; expected letters, '...', ',' and '->'");
    }
  }
  return s;
}

Labels with_ellipsis(const Subscripts& s, std::int64_t ellipsis_dims, std::int64_t widest) {
  Labels labels(s.letters.begin(), s.letters.begin() + std::max<std::ptrdiff_t>(s.ellipsis_at, 0));
  for (std::int64_t i = widest - ellipsis_dims; i < widest; ++i)
    labels.push_back(kEllipsis + static_cast<int>(i));
  labels.insert(labels.end(), s.letters.begin() + std::max<std::ptrdiff_t>(s.ellipsis_at, 0),
                s.letters.end());
  return labels;
}

std::vector<std::int64_t> positions(const Labels& of, const Labels& in) {
  std::vector<std::int64_t> p;
  for (int l : of) p.push_back(std::find(in.begin(), in.end(), l) - in.begin());
  return p;
}

Term permuted(const Term& x, const Labels& order) {
  if (order == x.labels) return x;
  return {permute(x.t, positions(order, x.labels)), order};
}

std::int64_t size_product(const Term& x, const Labels& labels) {
  std::int64_t n = 1;
  for (std::int64_t p : positions(labels, x.labels)) n *= x.t.size(p);
  return n;
}

/// Sums x over its labels that are not in `keep`.
Term sum_out(const Term& x, const std::set<int>& keep) {
  Dims dims;
  Labels rest;
  for (std::size_t i = 0; i < x.labels.size(); ++i) {
    if (keep.count(x.labels[i]))
      rest.push_back(x.labels[i]);
    else
      dims.push_back(static_cast<std::int64_t>(i));
  }
  if (dims.empty()) return x;
  return {sum(x.t, dims), rest};
}

/// a and b contracted over their shared labels that are not in `keep`; the result's labels are the shared
/// kept ones (the batch), then a's own, then b's own.
Term contract(Term a, Term b, const std::set<int>& keep) {
  std::set<int> keep_a = keep, keep_b = keep;
  keep_a.insert(b.labels.begin(), b.labels.end());
  keep_b.insert(a.labels.begin(), a.labels.end());
  a = sum_out(a, keep_a);
  b = sum_out(b, keep_b);
  // A shared dim of size 1 on one side stretches to the other side's size (broadcasting).
  Shape grow_a(a.labels.size(), -1), grow_b(b.labels.size(), -1);
  for (std::size_t i = 0; i < a.labels.size(); ++i) {
    const auto j = std::find(b.labels.begin(), b.labels.end(), a.labels[i]) - b.labels.begin();
    if (j == static_cast<std::ptrdiff_t>(b.labels.size())) continue;
    if (a.t.size(static_cast<std::int64_t>(i)) == 1) grow_a[i] = b.t.size(j);
    if (b.t.size(j) == 1) grow_b[static_cast<std::size_t>(j)] = a.t.size(static_cast<std::int64_t>(i));
  }
  if (std::any_of(grow_a.begin(), grow_a.end(), [](std::int64_t s) { return s > 1; }))
    a.t = expand(a.t, grow_a);
  if (std::any_of(grow_b.begin(), grow_b.end(), [](std::int64_t s) { return s > 1; }))
    b.t = expand(b.t, grow_b);

  Labels batch, inner, rows, cols;
  for (int l : a.labels) (has(b.labels, l) ? (keep.count(l) ? batch : inner) : rows).push_back(l);
  for (int l : b.labels)
    if (!has(a.labels, l)) cols.push_back(l);
  auto joined = [](std::initializer_list<const Labels*> parts) {
    Labels all;
    for (const Labels* p : parts) all.insert(all.end(), p->begin(), p->end());
    return all;
  };
  // Each operand is used transposed when that avoids a copy: [batch, inner, rows] needs no permute for a
  // as op(a) = a^T, and likewise [batch, cols, inner] for b.
  const bool ta = a.labels == joined({&batch, &inner, &rows}) && a.labels != joined({&batch, &rows, &inner});
  const bool tb = b.labels == joined({&batch, &cols, &inner}) && b.labels != joined({&batch, &inner, &cols});
  a = permuted(a, ta ? joined({&batch, &inner, &rows}) : joined({&batch, &rows, &inner}));
  b = permuted(b, tb ? joined({&batch, &cols, &inner}) : joined({&batch, &inner, &cols}));
  const std::int64_t nb = size_product(a, batch), m = size_product(a, rows), k = size_product(a, inner),
                     n = size_product(b, cols);
  Shape shape_a = ta ? Shape{k, m} : Shape{m, k}, shape_b = tb ? Shape{n, k} : Shape{k, n};
  if (!batch.empty()) {
    shape_a.insert(shape_a.begin(), nb);
    shape_b.insert(shape_b.begin(), nb);
  }
  const Tensor c = mm(reshape(a.t, shape_a), reshape(b.t, shape_b), ta, tb);
  Term out{Tensor(), joined({&batch, &rows, &cols})};
  Shape shape;
  for (std::int64_t p : positions(batch, a.labels)) shape.push_back(a.t.size(p));
  for (std::int64_t p : positions(rows, a.labels)) shape.push_back(a.t.size(p));
  for (std::int64_t p : positions(cols, b.labels)) shape.push_back(b.t.size(p));
  out.t = reshape(c, shape);
  return out;
}

}  // namespace

Tensor einsum(const std::string& equation, const Tensors& operands) {
  std::string eq;
  for (char ch : equation)
    if (ch != ' ') eq += ch;
  const std::size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> texts;
  for (std::size_t start = 0;;) {
    const std::size_t comma = lhs.find(',', start);
    texts.push_back(lhs.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  BP_CHECK(texts.size() == operands.size(), ValueError, "einsum('", equation, "'): the equation names ",
           texts.size(), " operand(s) but ", operands.size(), " were given");
  std::vector<Subscripts> subs;
  std::int64_t widest = 0;  // the most dims any "..." covers
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::string what = "operand " + std::to_string(i);
    subs.push_back(parse_term(equation, texts[i], what));
    BP_CHECK(operands[i].defined(), ValueError, "einsum('", equation, "'): ", what, " is undefined");
    const auto letters = static_cast<std::int64_t>(subs[i].letters.size()), rank = operands[i].dim();
    BP_CHECK(subs[i].ellipsis_at >= 0 ? letters <= rank : letters == rank, ShapeError, "einsum('", equation,
             "'): ", what, " has shape ", operands[i].shape(), " but its subscripts '", texts[i], "' name ",
             letters, subs[i].ellipsis_at >= 0 ? " or more dims" : " dims");
    BP_CHECK(operands[i].dtype() == operands[0].dtype(), DTypeError, "einsum('", equation, "'): ", what,
             " is ", operands[i].dtype(), " but operand 0 is ", operands[0].dtype());
    if (subs[i].ellipsis_at >= 0) widest = std::max(widest, rank - letters);
  }
  std::vector<Term> terms;
  std::vector<std::int64_t> size_of(kEllipsis + static_cast<std::size_t>(widest), -1);
  std::vector<std::size_t> seen_in(size_of.size(), 0);
  for (std::size_t i = 0; i < operands.size(); ++i) {
    const std::int64_t covered = operands[i].dim() - static_cast<std::int64_t>(subs[i].letters.size());
    Term t{operands[i], with_ellipsis(subs[i], covered, widest)};
    for (std::size_t d = 0; d < t.labels.size(); ++d) {
      const auto l = static_cast<std::size_t>(t.labels[d]);
      const std::int64_t s = t.t.size(static_cast<std::int64_t>(d));
      BP_CHECK(size_of[l] < 0 || size_of[l] == s || size_of[l] == 1 || s == 1, ShapeError, "einsum('",
               equation, "'): subscript '", label_name(t.labels[d]), "' has size ", s, " in operand ", i,
               " but size ", size_of[l], " in operand ", seen_in[l], " (they must match or one be 1)");
      if (size_of[l] <= 1) {
        size_of[l] = s;
        seen_in[l] = i;
      }
    }
    terms.push_back(std::move(t));
  }

  Labels output;
  if (arrow != std::string::npos) {
    const Subscripts out = parse_term(equation, eq.substr(arrow + 2), "the output");
    for (int l : out.letters)
      BP_CHECK(size_of[static_cast<std::size_t>(l)] >= 0, ValueError, "einsum('", equation,
               "'): output subscript '", label_name(l), "' appears in no operand");
    output = with_ellipsis(out, out.ellipsis_at >= 0 ? widest : 0, widest);
  } else {  // implicit: the "..." dims, then every letter used once, in ASCII order
    for (std::int64_t i = 0; i < widest; ++i) output.push_back(kEllipsis + static_cast<int>(i));
    for (int l = 0; l < kEllipsis; ++l) {
      int uses = 0;
      for (const Term& t : terms) uses += has(t.labels, l) ? 1 : 0;
      if (uses == 1) output.push_back(l);
    }
  }

  Term acc = terms[0];
  for (std::size_t i = 1; i < terms.size(); ++i) {
    std::set<int> keep(output.begin(), output.end());
    for (std::size_t j = i + 1; j < terms.size(); ++j)
      keep.insert(terms[j].labels.begin(), terms[j].labels.end());
    acc = contract(acc, terms[i], keep);
  }
  acc = sum_out(acc, std::set<int>(output.begin(), output.end()));
  // A "..." dim that no operand reached stays out of the result (PyTorch gives it size 1 only when asked).
  Labels order;
  for (int l : output)
    if (has(acc.labels, l)) order.push_back(l);
  return permuted(acc, order).t;
}

}  // namespace backprop
