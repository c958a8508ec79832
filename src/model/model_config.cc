// Parses and validates HF config.json (+ generation_config.json) for Llama, Qwen2 and Qwen3;
// rope settings in the classic form (rope_theta, rope_scaling) or transformers 5's rope_parameters.
#include "model/model_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace hardkv {
namespace {

using nlohmann::json;

struct Architecture {
  const char* name;
  ModelFamily family;
};
constexpr Architecture kArchitectures[] = {
    {"LlamaForCausalLM", ModelFamily::kLlama},
    {"Qwen2ForCausalLM", ModelFamily::kQwen2},
    {"Qwen3ForCausalLM", ModelFamily::kQwen3},
};

std::string supported_architectures() {
  std::string s;
  for (const Architecture& a : kArchitectures) {
    if (!s.empty()) s += ", ";
    s += a.name;
  }
  return s;
}

// Field readers: `src` names the file, `obj` the object, `field` the key (for messages).
bool present(const json& obj, const char* field) {
  return obj.contains(field) && !obj[field].is_null();
}

int64_t get_int(const json& obj, const char* field, const std::string& src) {
  HARDKV_CHECK(present(obj, field), kBadFile, "{}: missing required field '{}'", src, field);
  const json& v = obj[field];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      return static_cast<int64_t>(d);
    }
  }
  HARDKV_THROW(kBadFile, "{}: field '{}' must be an integer, found {} ({})", src, field,
               v.type_name(), v.dump());
}

int64_t get_int_or(const json& obj, const char* field, int64_t fallback, const std::string& src) {
  return present(obj, field) ? get_int(obj, field, src) : fallback;
}

double get_double_or(const json& obj, const char* field, double fallback,
                     const std::string& src) {
  if (!present(obj, field)) return fallback;
  const json& v = obj[field];
  HARDKV_CHECK(v.is_number(), kBadFile, "{}: field '{}' must be a number, found {} ({})", src,
               field, v.type_name(), v.dump());
  return v.get<double>();
}

bool get_bool_or(const json& obj, const char* field, bool fallback, const std::string& src) {
  if (!present(obj, field)) return fallback;
  const json& v = obj[field];
  HARDKV_CHECK(v.is_boolean(), kBadFile, "{}: field '{}' must be true or false, found {} ({})",
               src, field, v.type_name(), v.dump());
  return v.get<bool>();
}

// eos_token_id: an integer, a list of integers, or null/absent.
void append_token_ids(const json& obj, const char* field, const std::string& src,
                      std::vector<int32_t>* out) {
  if (!present(obj, field)) return;
  const json& v = obj[field];
  auto add = [&](const json& x) {
    HARDKV_CHECK(x.is_number_integer() && x.get<int64_t>() >= 0 &&
                     x.get<int64_t>() <= INT32_MAX,
                 kBadFile, "{}: field '{}' must hold non-negative integer token ids, found {}",
                 src, field, v.dump());
    int32_t id = static_cast<int32_t>(x.get<int64_t>());
    for (int32_t e : *out) {
      if (e == id) return;
    }
    out->push_back(id);
  };
  if (v.is_array()) {
    for (const json& x : v) add(x);
  } else {
    add(v);
  }
}

DType parse_dtype(const json& doc, const std::string& src) {
  const char* field = present(doc, "dtype") ? "dtype" : "torch_dtype";
  if (!present(doc, field)) return DType::kF32;  // transformers loads such a config as float32
  const json& v = doc[field];
  HARDKV_CHECK(v.is_string(), kBadFile, "{}: field '{}' must be a string, found {}", src, field,
               v.dump());
  const std::string s = v.get<std::string>();
  if (s == "bfloat16") return DType::kBF16;
  if (s == "float16" || s == "half") return DType::kF16;
  if (s == "float32" || s == "float") return DType::kF32;
  HARDKV_THROW(kUnsupported, "{}: field '{}' is '{}'; supported: bfloat16, float16, float32", src,
               field, s);
}

// One rope parameter object: classic `rope_scaling` or transformers 5 `rope_parameters`.
void parse_rope_params(const json& params, const char* where, const std::string& src,
                       RopeConfig* rope) {
  HARDKV_CHECK(params.is_object(), kBadFile, "{}: field '{}' must be an object or null, found {}",
               src, where, params.dump());
  const char* type_field = present(params, "rope_type") ? "rope_type" : "type";
  std::string type = "default";
  if (present(params, type_field)) {
    HARDKV_CHECK(params[type_field].is_string(), kBadFile,
                 "{}: field '{}.{}' must be a string, found {}", src, where, type_field,
                 params[type_field].dump());
    type = params[type_field].get<std::string>();
  }
  const std::string field_prefix = std::string(where) + ".";
  auto name = [&](const char* f) { return field_prefix + f; };
  if (present(params, "rope_theta")) {
    rope->theta = get_double_or(params, "rope_theta", rope->theta, src + " (" + where + ")");
  }
  if (type == "default") {
    rope->scaling = RopeScaling::kNone;
  } else if (type == "linear") {
    rope->scaling = RopeScaling::kLinear;
    HARDKV_CHECK(present(params, "factor"), kBadFile, "{}: missing required field '{}'", src,
                 name("factor"));
    rope->factor = get_double_or(params, "factor", 1.0, src);
  } else if (type == "llama3") {
    rope->scaling = RopeScaling::kLlama3;
    for (const char* f : {"factor", "original_max_position_embeddings"}) {
      HARDKV_CHECK(present(params, f), kBadFile, "{}: missing required field '{}' for llama3 rope",
                   src, name(f));
    }
    rope->factor = get_double_or(params, "factor", 1.0, src);
    rope->low_freq_factor = get_double_or(params, "low_freq_factor", 1.0, src);
    rope->high_freq_factor = get_double_or(params, "high_freq_factor", 4.0, src);
    rope->original_max_position_embeddings =
        get_int(params, "original_max_position_embeddings", src);
    HARDKV_CHECK(rope->low_freq_factor > 0 && rope->high_freq_factor > rope->low_freq_factor,
                 kBadFile,
                 "{}: field '{}': llama3 rope needs 0 < low_freq_factor < high_freq_factor "
                 "(found {} and {})",
                 src, where, rope->low_freq_factor, rope->high_freq_factor);
    HARDKV_CHECK(rope->original_max_position_embeddings > 0, kBadFile,
                 "{}: field '{}' must be positive", src,
                 name("original_max_position_embeddings"));
  } else {
    HARDKV_THROW(kUnsupported,
                 "{}: field '{}' has rope type '{}', which hardkv does not support (supported: "
                 "default, linear, llama3)",
                 src, where, type);
  }
  HARDKV_CHECK(rope->factor > 0 && std::isfinite(rope->factor), kBadFile,
               "{}: field '{}' must be positive, found {}", src, name("factor"), rope->factor);
}

RopeConfig parse_rope(const json& doc, const std::string& src) {
  RopeConfig rope;
  rope.theta = get_double_or(doc, "rope_theta", 10000.0, src);
  if (present(doc, "rope_parameters")) {
    parse_rope_params(doc["rope_parameters"], "rope_parameters", src, &rope);
  } else if (present(doc, "rope_scaling")) {
    parse_rope_params(doc["rope_scaling"], "rope_scaling", src, &rope);
  }
  HARDKV_CHECK(rope.theta > 0 && std::isfinite(rope.theta), kBadFile,
               "{}: field 'rope_theta' must be positive, found {}", src, rope.theta);
  return rope;
}

void check_positive(int64_t value, const char* field, const std::string& src) {
  HARDKV_CHECK(value > 0, kBadFile, "{}: field '{}' must be positive, found {}", src, field,
               value);
}

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HARDKV_CHECK(in.good(), kBadFile, "{}: cannot open (missing file?)", path);
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    return json::parse(buf.str());
  } catch (const json::exception& e) {
    HARDKV_THROW(kBadFile, "{}: not valid JSON ({})", path, e.what());
  }
}

}  // namespace

const char* model_family_name(ModelFamily family) {
  switch (family) {
    case ModelFamily::kLlama: return "llama";
    case ModelFamily::kQwen2: return "qwen2";
    case ModelFamily::kQwen3: return "qwen3";
  }
  return "?";
}

ModelConfig parse_model_config(const json& doc, const std::string& source) {
  const std::string& src = source;
  HARDKV_CHECK(doc.is_object(), kBadFile, "{}: not a JSON object (found {})", src,
               doc.type_name());
  ModelConfig c;

  HARDKV_CHECK(present(doc, "architectures"), kBadFile,
               "{}: missing required field 'architectures' (supported: {})", src,
               supported_architectures());
  const json& archs = doc["architectures"];
  HARDKV_CHECK(archs.is_array() && !archs.empty() && archs[0].is_string(), kBadFile,
               "{}: field 'architectures' must be a non-empty list of strings, found {}", src,
               archs.dump());
  c.architecture = archs[0].get<std::string>();
  bool known = false;
  for (const Architecture& a : kArchitectures) {
    if (c.architecture == a.name) {
      c.family = a.family;
      known = true;
    }
  }
  HARDKV_CHECK(known, kUnsupported, "{}: architecture '{}' is not supported (supported: {})", src,
               c.architecture, supported_architectures());

  if (present(doc, "hidden_act")) {
    const json& act = doc["hidden_act"];
    HARDKV_CHECK(act.is_string() && act.get<std::string>() == "silu", kUnsupported,
                 "{}: field 'hidden_act' is {}; hardkv supports only \"silu\"", src, act.dump());
  }
  HARDKV_CHECK(!get_bool_or(doc, "use_sliding_window", false, src), kUnsupported,
               "{}: field 'use_sliding_window' is true; sliding-window attention is not supported",
               src);

  c.vocab_size = get_int(doc, "vocab_size", src);
  c.hidden_size = get_int(doc, "hidden_size", src);
  c.intermediate_size = get_int(doc, "intermediate_size", src);
  c.num_layers = get_int(doc, "num_hidden_layers", src);
  c.num_heads = get_int(doc, "num_attention_heads", src);
  check_positive(c.vocab_size, "vocab_size", src);
  check_positive(c.hidden_size, "hidden_size", src);
  check_positive(c.intermediate_size, "intermediate_size", src);
  check_positive(c.num_layers, "num_hidden_layers", src);
  check_positive(c.num_heads, "num_attention_heads", src);
  c.num_kv_heads = get_int_or(doc, "num_key_value_heads", c.num_heads, src);
  check_positive(c.num_kv_heads, "num_key_value_heads", src);
  HARDKV_CHECK(c.num_heads % c.num_kv_heads == 0, kBadFile,
               "{}: field 'num_attention_heads' ({}) must be a multiple of "
               "'num_key_value_heads' ({})",
               src, c.num_heads, c.num_kv_heads);
  if (present(doc, "head_dim")) {
    c.head_dim = get_int(doc, "head_dim", src);
  } else {
    HARDKV_CHECK(c.hidden_size % c.num_heads == 0, kBadFile,
                 "{}: no 'head_dim', and 'hidden_size' ({}) is not a multiple of "
                 "'num_attention_heads' ({})",
                 src, c.hidden_size, c.num_heads);
    c.head_dim = c.hidden_size / c.num_heads;
  }
  check_positive(c.head_dim, "head_dim", src);
  HARDKV_CHECK(c.head_dim % 2 == 0, kBadFile, "{}: field 'head_dim' ({}) must be even for RoPE",
               src, c.head_dim);
  c.max_position_embeddings = get_int(doc, "max_position_embeddings", src);
  check_positive(c.max_position_embeddings, "max_position_embeddings", src);
  c.rms_norm_eps = get_double_or(doc, "rms_norm_eps", 1e-6, src);
  HARDKV_CHECK(c.rms_norm_eps > 0 && c.rms_norm_eps < 1, kBadFile,
               "{}: field 'rms_norm_eps' must be in (0, 1), found {}", src, c.rms_norm_eps);
  c.tie_word_embeddings = get_bool_or(doc, "tie_word_embeddings", false, src);

  const bool attention_bias = get_bool_or(doc, "attention_bias", false, src);
  const bool mlp_bias = get_bool_or(doc, "mlp_bias", false, src);
  switch (c.family) {
    case ModelFamily::kQwen2:  // q/k/v always carry a bias, o_proj never
      c.qkv_bias = true;
      break;
    case ModelFamily::kQwen3:
      c.qk_norm = true;
      c.qkv_bias = c.o_bias = attention_bias;
      break;
    case ModelFamily::kLlama:
      c.qkv_bias = c.o_bias = attention_bias;
      c.mlp_bias = mlp_bias;
      break;
  }

  c.rope = parse_rope(doc, src);
  c.dtype = parse_dtype(doc, src);
  const int64_t bos = get_int_or(doc, "bos_token_id", -1, src);
  HARDKV_CHECK(bos >= -1 && bos <= INT32_MAX, kBadFile,
               "{}: field 'bos_token_id' is out of range ({})", src, bos);
  c.bos_token_id = static_cast<int32_t>(bos);
  append_token_ids(doc, "eos_token_id", src, &c.eos_token_ids);
  return c;
}

ModelConfig load_model_config(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const std::string config_path = (fs::path(model_dir) / "config.json").string();
  ModelConfig c = parse_model_config(read_json_file(config_path), config_path);
  const std::string gen_path = (fs::path(model_dir) / "generation_config.json").string();
  std::error_code ec;
  if (fs::exists(gen_path, ec)) {
    json gen = read_json_file(gen_path);
    HARDKV_CHECK(gen.is_object(), kBadFile, "{}: not a JSON object (found {})", gen_path,
                 gen.type_name());
    append_token_ids(gen, "eos_token_id", gen_path, &c.eos_token_ids);
  }
  return c;
}

}  // namespace hardkv
