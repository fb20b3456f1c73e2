// A catalog's Plural-Forms formula: which of msgstr[0..nplurals) a count n
// selects. The index means a different count in every language (Arabic's
// msgstr[0] is for n = 0, Polish's msgstr[1] for 2-4), so pairing plural
// forms needs the formula, not the index.
#ifndef PIPETRAIN_CORE_DATA_PLURAL_FORMS_H_
#define PIPETRAIN_CORE_DATA_PLURAL_FORMS_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace pipetrain {

class PluralForms {
 public:
  // Parses the header value (the two fields are found anywhere in it, as
  // gettext does), e.g. "nplurals=3; plural=(n%10==1 && n%100!=11
  // ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);". The
  // formula is gettext's C subset: n, decimal numbers, ! * / % + - < > <= >=
  // == != && || ?: and parentheses.
  static absl::StatusOr<PluralForms> Parse(std::string_view header_value);
  // gettext's rule for a catalog that names none: two forms, n != 1.
  static PluralForms Germanic();

  int nplurals() const { return nplurals_; }
  // The form for count n; an error when the formula divides by zero or names
  // a form outside [0, nplurals).
  absl::StatusOr<int> FormFor(uint64_t n) const;

 private:
  enum class Op : uint8_t {
    kN,
    kNumber,
    kNot,
    kMul,
    kDiv,
    kMod,
    kAdd,
    kSub,
    kLess,
    kGreater,
    kLessEq,
    kGreaterEq,
    kEq,
    kNotEq,
    kAnd,
    kOr,
    kCond,
  };
  struct Node {
    Op op;
    uint64_t value = 0;  // kNumber
    int a = -1, b = -1, c = -1;
  };
  class Parser;

  absl::StatusOr<uint64_t> Eval(int node, uint64_t n) const;

  int nplurals_ = 2;
  std::vector<Node> nodes_;
  int root_ = -1;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_DATA_PLURAL_FORMS_H_
