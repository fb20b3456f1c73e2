#include "core/data/plural_forms.h"

#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pipetrain {

// Recursive descent over C's precedence levels, lowest first:
// ?: (right-associative), ||, &&, == !=, < > <= >=, + -, * / %, unary !.
class PluralForms::Parser {
 public:
  Parser(std::string_view text, std::vector<Node>* nodes) : text_(text), nodes_(nodes) {}

  absl::StatusOr<int> Formula() {
    auto root = Conditional(0);
    if (!root.ok()) return root;
    Skip();
    if (pos_ != text_.size()) return Error("unexpected text");
    // Evaluation recurses over the tree; real formulas have under 100 nodes.
    if (nodes_->size() > kMaxNodes) return Error("formula too long");
    return root;
  }

 private:
  // Deeper than any real formula; bounds the recursion on hostile input.
  static constexpr int kMaxDepth = 64;
  static constexpr size_t kMaxNodes = 1000;

  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("Plural-Forms formula '", std::string(text_),
                                                   "': ", std::string(what), " at character ",
                                                   pos_));
  }
  void Skip() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Accept(std::string_view token) {
    Skip();
    if (text_.substr(pos_, token.size()) != token) return false;
    // "<" must not take the first half of "<=", nor "!" of "!=".
    if (token.size() == 1 && pos_ + 1 < text_.size() && text_[pos_ + 1] == '=' &&
        (token == "<" || token == ">" || token == "!" || token == "=")) {
      return false;
    }
    pos_ += token.size();
    return true;
  }
  int Add(Op op, int a = -1, int b = -1, int c = -1, uint64_t value = 0) {
    nodes_->push_back(Node{op, value, a, b, c});
    return static_cast<int>(nodes_->size()) - 1;
  }

  absl::StatusOr<int> Conditional(int depth) {
    if (depth > kMaxDepth) return Error("nested too deeply");
    auto cond = Binary(0, depth);
    if (!cond.ok() || !Accept("?")) return cond;
    auto yes = Conditional(depth + 1);
    if (!yes.ok()) return yes;
    if (!Accept(":")) return Error("expected ':'");
    auto no = Conditional(depth + 1);
    if (!no.ok()) return no;
    return Add(Op::kCond, *cond, *yes, *no);
  }

  // Binary operators by level, lowest precedence first.
  absl::StatusOr<int> Binary(int level, int depth) {
    static constexpr std::pair<std::string_view, Op> kLevels[][4] = {
        {{"||", Op::kOr}},
        {{"&&", Op::kAnd}},
        {{"==", Op::kEq}, {"!=", Op::kNotEq}},
        {{"<=", Op::kLessEq}, {">=", Op::kGreaterEq}, {"<", Op::kLess}, {">", Op::kGreater}},
        {{"+", Op::kAdd}, {"-", Op::kSub}},
        {{"*", Op::kMul}, {"/", Op::kDiv}, {"%", Op::kMod}},
    };
    constexpr int kNumLevels = sizeof(kLevels) / sizeof(kLevels[0]);
    if (level == kNumLevels) return Unary(depth);
    auto left = Binary(level + 1, depth);
    if (!left.ok()) return left;
    for (;;) {
      bool matched = false;
      for (const auto& [token, op] : kLevels[level]) {
        if (token.empty() || !Accept(token)) continue;
        auto right = Binary(level + 1, depth);
        if (!right.ok()) return right;
        left = Add(op, *left, *right);
        matched = true;
        break;
      }
      if (!matched) return left;
    }
  }

  absl::StatusOr<int> Unary(int depth) {
    if (depth > kMaxDepth) return Error("nested too deeply");
    if (Accept("!")) {
      auto operand = Unary(depth + 1);
      if (!operand.ok()) return operand;
      return Add(Op::kNot, *operand);
    }
    Skip();
    if (Accept("(")) {
      auto inner = Conditional(depth + 1);
      if (!inner.ok()) return inner;
      if (!Accept(")")) return Error("expected ')'");
      return inner;
    }
    if (pos_ < text_.size() && text_[pos_] == 'n') {
      ++pos_;
      return Add(Op::kN);
    }
    if (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      uint64_t value = 0;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        if (value > (UINT64_MAX - 9) / 10) return Error("number too large");
        value = value * 10 + static_cast<uint64_t>(text_[pos_++] - '0');
      }
      return Add(Op::kNumber, -1, -1, -1, value);
    }
    return Error("expected n, a number, '!' or '('");
  }

  std::string_view text_;
  std::vector<Node>* nodes_;
  size_t pos_ = 0;
};

absl::StatusOr<PluralForms> PluralForms::Parse(std::string_view header_value) {
  // "nplurals=N; plural=EXPR;". Like gettext itself, look for the two
  // fields anywhere in the value: some catalogs repeat the field name
  // ("Plural-Forms: nplurals=2; ...") and still work with every gettext.
  std::string_view nplurals_text, plural_text;
  if (const size_t at = header_value.find("nplurals="); at != std::string_view::npos) {
    nplurals_text = header_value.substr(at + 9);
    nplurals_text = nplurals_text.substr(0, nplurals_text.find(';'));
  }
  for (size_t at = header_value.find("plural="); at != std::string_view::npos;
       at = header_value.find("plural=", at + 1)) {
    if (at > 0 && header_value[at - 1] == 'n') continue;  // the "plural=" of "nplurals="
    plural_text = header_value.substr(at + 7);
    plural_text = plural_text.substr(0, plural_text.find(';'));
    break;
  }
  if (nplurals_text.empty() || plural_text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("Plural-Forms '", std::string(header_value),
                                                   "': expected 'nplurals=N; plural=EXPRESSION;'"));
  }
  PluralForms forms;
  forms.nplurals_ = 0;
  for (char c : nplurals_text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (!std::isdigit(static_cast<unsigned char>(c)) || forms.nplurals_ > 100) {
      return absl::InvalidArgumentError(absl::StrCat("Plural-Forms '", std::string(header_value),
                                                     "': nplurals must be a number from 1 to 100"));
    }
    forms.nplurals_ = forms.nplurals_ * 10 + (c - '0');
  }
  if (forms.nplurals_ < 1 || forms.nplurals_ > 100) {
    return absl::InvalidArgumentError(absl::StrCat("Plural-Forms '", std::string(header_value),
                                                   "': nplurals must be a number from 1 to 100"));
  }
  Parser parser(plural_text, &forms.nodes_);
  auto root = parser.Formula();
  if (!root.ok()) return root.status();
  forms.root_ = *root;
  return forms;
}

PluralForms PluralForms::Germanic() {
  auto forms = Parse("nplurals=2; plural=n != 1;");
  return *forms;
}

absl::StatusOr<uint64_t> PluralForms::Eval(int index, uint64_t n) const {
  const Node& node = nodes_[index];
  switch (node.op) {
    case Op::kN:
      return n;
    case Op::kNumber:
      return node.value;
    case Op::kNot: {
      auto a = Eval(node.a, n);
      if (!a.ok()) return a;
      return uint64_t{*a == 0};
    }
    case Op::kCond: {
      auto cond = Eval(node.a, n);
      if (!cond.ok()) return cond;
      return Eval(*cond != 0 ? node.b : node.c, n);
    }
    case Op::kAnd:
    case Op::kOr: {  // short-circuit, as in C
      auto a = Eval(node.a, n);
      if (!a.ok()) return a;
      if ((node.op == Op::kAnd) == (*a == 0)) return uint64_t{node.op == Op::kOr};
      auto b = Eval(node.b, n);
      if (!b.ok()) return b;
      return uint64_t{*b != 0};
    }
    default:
      break;
  }
  auto a = Eval(node.a, n);
  if (!a.ok()) return a;
  auto b = Eval(node.b, n);
  if (!b.ok()) return b;
  switch (node.op) {
    case Op::kMul:
      return *a * *b;
    case Op::kDiv:
    case Op::kMod:
      if (*b == 0) return absl::InvalidArgumentError("Plural-Forms formula divides by zero");
      return node.op == Op::kDiv ? *a / *b : *a % *b;
    case Op::kAdd:
      return *a + *b;
    case Op::kSub:
      return *a - *b;
    case Op::kLess:
      return uint64_t{*a < *b};
    case Op::kGreater:
      return uint64_t{*a > *b};
    case Op::kLessEq:
      return uint64_t{*a <= *b};
    case Op::kGreaterEq:
      return uint64_t{*a >= *b};
    case Op::kEq:
      return uint64_t{*a == *b};
    case Op::kNotEq:
      return uint64_t{*a != *b};
    default:
      return absl::InternalError("Plural-Forms: unknown operator");
  }
}

absl::StatusOr<int> PluralForms::FormFor(uint64_t n) const {
  auto form = Eval(root_, n);
  if (!form.ok()) return form.status();
  if (*form >= static_cast<uint64_t>(nplurals_)) {
    return absl::InvalidArgumentError(absl::StrCat("Plural-Forms formula gives form ", *form,
                                                   " for n=", n, " but nplurals=", nplurals_));
  }
  return static_cast<int>(*form);
}

}  // namespace pipetrain
