// Normalizers from tokenizer.json, applied in order to each text segment between added tokens.
#include "tokenizer/normalizer.h"

#include "core/error.h"

namespace hardkv {
namespace {

std::string string_field(const nlohmann::json& spec, const char* key, const std::string& type) {
  HARDKV_CHECK(spec.contains(key) && spec[key].is_string(), kBadFile,
               "normalizer {} needs a string \"{}\"", type, key);
  return spec[key].get<std::string>();
}

}  // namespace

Normalizer Normalizer::from_json(const nlohmann::json& spec) {
  Normalizer n;
  n.add_spec(spec);
  return n;
}

void Normalizer::add_spec(const nlohmann::json& spec) {
  if (spec.is_null()) return;
  HARDKV_CHECK(spec.is_object() && spec.contains("type") && spec["type"].is_string(), kBadFile,
               "normalizer must be null or an object with a \"type\"");
  const std::string type = spec["type"].get<std::string>();
  const auto normal_form = [&](utf8::NormalForm form) {
    Step step{};
    step.kind = Step::Kind::kNormalForm;
    step.form = form;
    steps_.push_back(step);
  };
  if (type == "NFC") {
    normal_form(utf8::NormalForm::kNFC);
  } else if (type == "NFD") {
    normal_form(utf8::NormalForm::kNFD);
  } else if (type == "NFKC") {
    normal_form(utf8::NormalForm::kNFKC);
  } else if (type == "NFKD") {
    normal_form(utf8::NormalForm::kNFKD);
  } else if (type == "Prepend") {
    Step step{};
    step.kind = Step::Kind::kPrepend;
    step.content = string_field(spec, "prepend", type);
    steps_.push_back(step);
  } else if (type == "Replace") {
    const auto& pattern = spec.contains("pattern") ? spec["pattern"] : nlohmann::json();
    HARDKV_CHECK(pattern.is_object(), kBadFile, "normalizer Replace needs a \"pattern\" object");
    HARDKV_CHECK(pattern.contains("String") && pattern["String"].is_string(), kUnsupported,
                 "normalizer Replace with a regex pattern is not supported (only \"String\")");
    Step step{};
    step.kind = Step::Kind::kReplace;
    step.pattern = pattern["String"].get<std::string>();
    step.content = string_field(spec, "content", type);
    HARDKV_CHECK(!step.pattern.empty(), kBadFile, "normalizer Replace pattern is empty");
    steps_.push_back(step);
  } else if (type == "Sequence") {
    HARDKV_CHECK(spec.contains("normalizers") && spec["normalizers"].is_array(), kBadFile,
                 "normalizer Sequence needs a \"normalizers\" array");
    for (const auto& sub : spec["normalizers"]) add_spec(sub);
  } else {
    HARDKV_THROW(kUnsupported,
                 "normalizer type \"{}\" is not supported (hardkv handles NFC, NFD, NFKC, NFKD, "
                 "Prepend, Replace and Sequence of them)",
                 type);
  }
}

std::string Normalizer::apply(std::string_view text) const {
  std::string out(text);
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Step::Kind::kNormalForm:
        out = utf8::normalize(out, step.form);
        break;
      case Step::Kind::kPrepend:
        if (!out.empty()) out.insert(0, step.content);  // HF prepends to non-empty text only
        break;
      case Step::Kind::kReplace: {
        std::string replaced;
        size_t pos = 0;
        for (size_t hit; (hit = out.find(step.pattern, pos)) != std::string::npos;) {
          replaced.append(out, pos, hit - pos).append(step.content);
          pos = hit + step.pattern.size();
        }
        out = replaced.append(out, pos, std::string::npos);
        break;
      }
    }
  }
  return out;
}

}  // namespace hardkv
