// Pre-tokenizer steps applied piece by piece, as HF tokenizers' PreTokenizedString::split does.
#include "tokenizer/pre_tokenizer.h"

#include "core/error.h"

namespace hardkv {
namespace {

struct Span {
  size_t begin, end;
  bool is_match;
};

SplitBehavior parse_behavior(const std::string& name) {
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  HARDKV_THROW(kBadFile, "pre_tokenizer Split has unknown behavior \"{}\"", name);
}

bool get_bool(const nlohmann::json& spec, const char* key, bool fallback) {
  if (!spec.contains(key) || spec[key].is_null()) return fallback;
  HARDKV_CHECK(spec[key].is_boolean(), kBadFile, "pre_tokenizer field \"{}\" must be a boolean",
               key);
  return spec[key].get<bool>();
}

// Groups match / gap spans into pieces following the Split behaviour (HF SplitDelimiterBehavior).
std::vector<Span> apply_behavior(const std::vector<Span>& spans, SplitBehavior behavior) {
  std::vector<Span> out;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      return spans;
    case SplitBehavior::kRemoved:
      for (const Span& s : spans) {
        if (!s.is_match) out.push_back(s);
      }
      return out;
    case SplitBehavior::kMergedWithPrevious:
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back(s);
        }
        previous_match = s.is_match;
      }
      return out;
    case SplitBehavior::kMergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().begin = it->begin;
        } else {
          out.push_back(*it);
        }
        previous_match = it->is_match;
      }
      return std::vector<Span>(out.rbegin(), out.rend());
    case SplitBehavior::kContiguous:
      for (size_t i = 0; i < spans.size(); ++i) {
        if (i > 0 && spans[i].is_match == previous_match) {
          out.back().end = spans[i].end;
        } else {
          out.push_back(spans[i]);
        }
        previous_match = spans[i].is_match;
      }
      return out;
  }
  return out;
}

}  // namespace

PreTokenizer PreTokenizer::from_json(const nlohmann::json& spec) {
  PreTokenizer p;
  if (!spec.is_null()) p.add_spec(spec, p.byte_level_);
  return p;
}

void PreTokenizer::add_spec(const nlohmann::json& spec, bool& has_byte_level) {
  HARDKV_CHECK(spec.is_object() && spec.contains("type") && spec["type"].is_string(), kBadFile,
               "pre_tokenizer must be an object with a \"type\"");
  const std::string type = spec["type"].get<std::string>();
  if (type == "Sequence") {
    HARDKV_CHECK(spec.contains("pretokenizers") && spec["pretokenizers"].is_array(), kBadFile,
                 "pre_tokenizer Sequence needs a \"pretokenizers\" array");
    for (const auto& sub : spec["pretokenizers"]) add_spec(sub, has_byte_level);
  } else if (type == "ByteLevel") {
    has_byte_level = true;
    Step step;
    step.add_prefix_space = get_bool(spec, "add_prefix_space", false);
    if (get_bool(spec, "use_regex", true)) {
      step.regex = std::make_shared<const Regex>(std::string(kGpt2Regex));
    }
    if (step.add_prefix_space || step.regex) steps_.push_back(std::move(step));
  } else if (type == "Split") {
    HARDKV_CHECK(spec.contains("pattern") && spec["pattern"].is_object(), kBadFile,
                 "pre_tokenizer Split needs a \"pattern\" object");
    const auto& pattern = spec["pattern"];
    std::string regex;
    if (pattern.contains("Regex") && pattern["Regex"].is_string()) {
      regex = translate_hf_regex(pattern["Regex"].get<std::string>());
    } else if (pattern.contains("String") && pattern["String"].is_string()) {
      regex = escape_regex(pattern["String"].get<std::string>());
    } else {
      HARDKV_THROW(kBadFile, "pre_tokenizer Split pattern needs a \"Regex\" or \"String\"");
    }
    HARDKV_CHECK(!regex.empty(), kBadFile, "pre_tokenizer Split pattern is empty");
    Step step;
    step.regex = std::make_shared<const Regex>(regex);
    HARDKV_CHECK(spec.contains("behavior") && spec["behavior"].is_string(), kBadFile,
                 "pre_tokenizer Split needs a \"behavior\"");
    step.behavior = parse_behavior(spec["behavior"].get<std::string>());
    step.invert = get_bool(spec, "invert", false);
    steps_.push_back(std::move(step));
  } else {
    HARDKV_THROW(kUnsupported,
                 "pre_tokenizer type \"{}\" is not supported (hardkv handles Split, ByteLevel and "
                 "Sequence)",
                 type);
  }
}

void PreTokenizer::split(std::string_view text, std::vector<std::string>& pieces) const {
  std::vector<std::string> current;
  if (!text.empty()) current.emplace_back(text);
  std::vector<std::string> next;
  std::vector<Span> spans;
  for (const Step& step : steps_) {
    next.clear();
    for (std::string& piece : current) {
      if (step.add_prefix_space && (piece.empty() || piece[0] != ' ')) piece.insert(0, 1, ' ');
      if (!step.regex) {
        next.push_back(std::move(piece));
        continue;
      }
      spans.clear();
      size_t last = 0;
      step.regex->for_each_match(piece, [&](size_t begin, size_t end) {
        if (begin > last) spans.push_back({last, begin, step.invert});
        spans.push_back({begin, end, !step.invert});
        last = end;
      });
      if (last < piece.size()) spans.push_back({last, piece.size(), step.invert});
      for (const Span& s : apply_behavior(spans, step.behavior)) {
        if (s.end > s.begin) next.emplace_back(piece, s.begin, s.end - s.begin);
      }
    }
    current.swap(next);
  }
  for (std::string& piece : current) pieces.push_back(std::move(piece));
}

}  // namespace hardkv
