// The "13a" tokenizer: mteval-v13a.pl's tokenization as sacreBLEU 2.x applies
// it before BLEU (its default), rule for rule:
//   1. remove "<skipped>", join "-\n" line breaks, turn other "\n" into spaces;
//   2. unescape &quot; &amp; &lt; &gt; (in that order, each over the whole
//      line, so "&amp;lt;" becomes "<");
//   3. put spaces around the ASCII symbols { | } ~ [ \ ] ^ _ ` ! " # $ % &
//      ( ) * + : ; < = > ? @ /  (not ' - . ,);
//   4. split off "." and "," unless both neighbours are digits ("1,000.5"
//      stays whole, "end." becomes "end ."), and "-" after a digit;
//   5. collapse whitespace (Python's definition, metric_input.h) to single
//      spaces, trimmed.
// Only ASCII is touched; every other script passes through as is.
#ifndef PIPETRAIN_CORE_METRICS_TOKENIZER_13A_H_
#define PIPETRAIN_CORE_METRICS_TOKENIZER_13A_H_

#include <string>
#include <string_view>

namespace pipetrain {

// Tokens separated by single spaces.
std::string Tokenize13a(std::string_view line);

}  // namespace pipetrain

#endif  // PIPETRAIN_CORE_METRICS_TOKENIZER_13A_H_
