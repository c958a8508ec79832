// tokenizer.json / tokenizer_config.json parsing: each section goes to its component's from_json;
// errors get the file name prepended.
#include "tokenizer/tokenizer_json.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace hardkv {
namespace {

std::string read_file(const std::string& path) {
  std::error_code ec;
  HARDKV_CHECK(std::filesystem::is_regular_file(path, ec), kBadFile,
               "{}: cannot open file (missing, or not a regular file)", path);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  HARDKV_CHECK(in.good(), kBadFile, "{}: cannot open file (unreadable)", path);
  const std::streamoff size = in.tellg();
  HARDKV_CHECK(size >= 0, kBadFile, "{}: cannot read file", path);
  std::string text(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(text.data(), size);
  HARDKV_CHECK(in.gcount() == size, kBadFile, "{}: read error", path);
  return text;
}

nlohmann::json parse_json(const std::string& path) {
  const std::string text = read_file(path);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  HARDKV_CHECK(!j.is_discarded(), kBadFile, "{}: not valid JSON", path);
  HARDKV_CHECK(j.is_object(), kBadFile, "{}: top level is not a JSON object", path);
  return j;
}

// Runs `body`, turning any hardkv::Error or JSON type error into an error that names `path`.
template <typename Body>
auto with_path(const std::string& path, Body&& body) {
  try {
    return body();
  } catch (const Error& e) {
    if (e.message().rfind(path, 0) == 0) throw;
    throw Error(e.kind(), path + ": " + e.message(), __FILE__, __LINE__, __func__);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::kBadFile, path + ": unexpected JSON content: " + e.what(), __FILE__,
                __LINE__, __func__);
  }
}

const nlohmann::json& field_or_null(const nlohmann::json& j, const char* key) {
  static const nlohmann::json kNull;
  return j.contains(key) ? j[key] : kNull;
}

// Ids of a TemplateProcessing special-token reference.
std::vector<int32_t> template_special_ids(const nlohmann::json& processor,
                                          const std::string& name) {
  const auto& specials = field_or_null(processor, "special_tokens");
  HARDKV_CHECK(specials.is_object() && specials.contains(name), kBadFile,
               "post_processor template names special token \"{}\" missing from special_tokens",
               name);
  const auto& ids = field_or_null(specials[name], "ids");
  HARDKV_CHECK(ids.is_array(), kBadFile, "post_processor special token \"{}\" has no ids", name);
  std::vector<int32_t> out;
  for (const auto& id : ids) out.push_back(id.get<int32_t>());
  return out;
}

void parse_post_processor(const nlohmann::json& spec, TokenizerImpl& impl) {
  if (spec.is_null()) return;
  HARDKV_CHECK(spec.is_object() && spec.contains("type") && spec["type"].is_string(), kBadFile,
               "post_processor must be null or an object with a \"type\"");
  const std::string type = spec["type"].get<std::string>();
  if (type == "ByteLevel") return;  // only adjusts offsets
  if (type == "Sequence") {
    for (const auto& sub : field_or_null(spec, "processors")) parse_post_processor(sub, impl);
    return;
  }
  if (type == "TemplateProcessing") {
    const auto& single = field_or_null(spec, "single");
    HARDKV_CHECK(single.is_array(), kBadFile,
                 "post_processor TemplateProcessing has no \"single\"");
    impl.prefix_ids_.clear();
    impl.suffix_ids_.clear();
    bool seen_sequence = false;
    for (const auto& item : single) {
      if (item.contains("Sequence")) {
        seen_sequence = true;
      } else if (item.contains("SpecialToken")) {
        const auto ids = template_special_ids(spec, item["SpecialToken"]["id"].get<std::string>());
        auto& dst = seen_sequence ? impl.suffix_ids_ : impl.prefix_ids_;
        dst.insert(dst.end(), ids.begin(), ids.end());
      } else {
        HARDKV_THROW(kBadFile,
                     "post_processor template item {} is neither Sequence nor SpecialToken",
                     item.dump());
      }
    }
    impl.has_template_ = true;
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    const auto& cls = field_or_null(spec, "cls");
    const auto& sep = field_or_null(spec, "sep");
    HARDKV_CHECK(cls.is_array() && cls.size() == 2 && sep.is_array() && sep.size() == 2, kBadFile,
                 "post_processor {} needs \"cls\" and \"sep\" pairs", type);
    impl.prefix_ids_ = {cls[1].get<int32_t>()};
    impl.suffix_ids_ = {sep[1].get<int32_t>()};
    impl.has_template_ = true;
    return;
  }
  HARDKV_THROW(kUnsupported, "post_processor type \"{}\" is not supported", type);
}

void parse_decoder(const nlohmann::json& spec, DecoderSpec& decoder) {
  HARDKV_CHECK(spec.is_object() && spec.contains("type") && spec["type"].is_string(), kBadFile,
               "decoder must be null or an object with a \"type\"");
  const std::string type = spec["type"].get<std::string>();
  if (type == "ByteLevel") {
    decoder.byte_level = true;
  } else if (type == "Sequence") {
    for (const auto& sub : field_or_null(spec, "decoders")) parse_decoder(sub, decoder);
  } else if (type == "Replace") {
    const auto& pattern = field_or_null(spec, "pattern");
    HARDKV_CHECK(pattern.is_object() && pattern.contains("String") &&
                     pattern["String"].is_string() && !pattern["String"].get<std::string>().empty(),
                 kUnsupported, "decoder Replace needs a literal \"String\" pattern");
    decoder.byte_level = false;
    decoder.replacements.emplace_back(pattern["String"].get<std::string>(),
                                      spec.at("content").get<std::string>());
  } else if (type == "ByteFallback") {
    decoder.byte_level = false;
    decoder.byte_fallback = true;
  } else if (type == "Fuse") {
    decoder.byte_level = false;  // tokens are concatenated anyway
  } else if (type == "Strip") {
    const std::string content = spec.at("content").get<std::string>();
    HARDKV_CHECK(content.size() == 1 && spec.value("stop", 0) == 0, kUnsupported,
                 "decoder Strip is supported with a one-byte content and stop = 0 only");
    decoder.byte_level = false;
    decoder.strip_char = content[0];
    decoder.strip_start = spec.value("start", 0);
  } else if (type == "Metaspace") {
    const std::string replacement = spec.value("replacement", std::string("\xE2\x96\x81"));
    const bool prefix = spec.value("prepend_scheme", std::string("always")) != "never" &&
                        spec.value("add_prefix_space", true);
    decoder.byte_level = false;
    decoder.replacements.emplace_back(replacement, " ");
    if (prefix) decoder.first_token_drops = replacement;
  } else {
    HARDKV_THROW(kUnsupported,
                 "decoder type \"{}\" is not supported (hardkv decodes ByteLevel, Replace, "
                 "ByteFallback, Fuse, Strip, Metaspace)",
                 type);
  }
}

// tokenizer_config.json writes a token either as a string or as {"content": "...", ...}.
std::optional<std::string> config_token(const nlohmann::json& config, const char* key) {
  const auto& v = field_or_null(config, key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  HARDKV_CHECK(v.is_null(), kBadFile, "\"{}\" must be a string, an object with \"content\" or null",
               key);
  return std::nullopt;
}

}  // namespace

std::unique_ptr<TokenizerImpl> load_tokenizer_json(const std::string& path) {
  const nlohmann::json j = parse_json(path);
  return with_path(path, [&] {
    HARDKV_CHECK(j.contains("model"), kBadFile, "no \"model\" section");
    Normalizer normalizer = Normalizer::from_json(field_or_null(j, "normalizer"));
    PreTokenizer pre_tokenizer = PreTokenizer::from_json(field_or_null(j, "pre_tokenizer"));
    const bool byte_level = pre_tokenizer.is_byte_level();
    BpeModel model = BpeModel::from_json(j["model"], byte_level);
    auto impl = std::make_unique<TokenizerImpl>(
        path, std::move(normalizer), std::move(pre_tokenizer), std::move(model),
        AddedVocabulary::from_json(field_or_null(j, "added_tokens")));
    parse_post_processor(field_or_null(j, "post_processor"), *impl);
    const auto& decoder = field_or_null(j, "decoder");
    if (decoder.is_null()) {
      // HF joins the tokens with spaces; hardkv decodes byte-level tokenizers as ByteLevel would.
      HARDKV_CHECK(byte_level, kUnsupported,
                   "a tokenizer without a decoder is supported for byte-level BPE only");
    } else {
      impl->decoder_.byte_level = false;
      parse_decoder(decoder, impl->decoder_);
    }
    impl->finish_loading();
    return impl;
  });
}

TokenizerConfig load_tokenizer_config(const std::string& path, const std::string& jinja_path) {
  TokenizerConfig config;
  config.path = path;
  if (std::ifstream(path).good()) {
    const nlohmann::json j = parse_json(path);
    config = with_path(path, [&] {
      TokenizerConfig c;
      c.path = path;
      c.bos_token = config_token(j, "bos_token");
      c.eos_token = config_token(j, "eos_token");
      const auto& add_bos = field_or_null(j, "add_bos_token");
      if (add_bos.is_boolean()) c.add_bos_token = add_bos.get<bool>();
      const auto& tmpl = field_or_null(j, "chat_template");
      if (tmpl.is_string()) {
        c.chat_template = tmpl.get<std::string>();
      } else if (tmpl.is_array()) {  // [{"name": "default", "template": "..."}, ...]
        for (const auto& entry : tmpl) {
          if (c.chat_template.empty() || entry.value("name", "") == "default") {
            c.chat_template = entry.at("template").get<std::string>();
          }
        }
      }
      return c;
    });
  }
  if (config.chat_template.empty()) {
    std::ifstream in(jinja_path, std::ios::binary);
    if (in.good()) {
      std::ostringstream buffer;
      buffer << in.rdbuf();
      config.chat_template = buffer.str();
    }
  }
  return config;
}

}  // namespace hardkv
