// Unicode normal-form normalizers from tokenizer.json.
#include "tokenizer/normalizer.h"

#include "core/error.h"

namespace hardkv {
namespace {

void add_spec(const nlohmann::json& spec, std::vector<utf8::NormalForm>& forms) {
  if (spec.is_null()) return;
  HARDKV_CHECK(spec.is_object() && spec.contains("type") && spec["type"].is_string(), kBadFile,
               "normalizer must be null or an object with a \"type\"");
  const std::string type = spec["type"].get<std::string>();
  if (type == "NFC") {
    forms.push_back(utf8::NormalForm::kNFC);
  } else if (type == "NFD") {
    forms.push_back(utf8::NormalForm::kNFD);
  } else if (type == "NFKC") {
    forms.push_back(utf8::NormalForm::kNFKC);
  } else if (type == "NFKD") {
    forms.push_back(utf8::NormalForm::kNFKD);
  } else if (type == "Sequence") {
    HARDKV_CHECK(spec.contains("normalizers") && spec["normalizers"].is_array(), kBadFile,
                 "normalizer Sequence needs a \"normalizers\" array");
    for (const auto& sub : spec["normalizers"]) add_spec(sub, forms);
  } else {
    HARDKV_THROW(kUnsupported,
                 "normalizer type \"{}\" is not supported (hardkv handles NFC, NFD, NFKC, NFKD "
                 "and Sequence of them)",
                 type);
  }
}

}  // namespace

Normalizer Normalizer::from_json(const nlohmann::json& spec) {
  Normalizer n;
  add_spec(spec, n.forms_);
  return n;
}

std::string Normalizer::apply(std::string_view text) const {
  std::string out(text);
  for (utf8::NormalForm form : forms_) out = utf8::normalize(out, form);
  return out;
}

}  // namespace hardkv
