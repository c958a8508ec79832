// JSONL readers for datasets and responses.
#include "eval/dataset.h"

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace hardkv::eval {
namespace {

// Calls `visit(row, line_number)` for every non-blank line parsed as a JSON object.
void for_each_json_line(const std::string& path,
                        const std::function<void(const nlohmann::json&, int)>& visit) {
  std::ifstream in(path);
  HARDKV_CHECK(in.good(), kBadFile, "cannot open '{}'", path);
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      HARDKV_THROW(kBadFile, "{}:{}: not valid JSON ({})", path, line_number, e.what());
    }
    HARDKV_CHECK(row.is_object(), kBadFile, "{}:{}: expected a JSON object, got {}", path,
                 line_number, row.type_name());
    visit(row, line_number);
  }
}

// A string field, or a number written in decimal; throws when missing or of another type.
std::string text_field(const nlohmann::json& row, const char* key, const std::string& path,
                       int line_number) {
  auto it = row.find(key);
  HARDKV_CHECK(it != row.end(), kBadFile, "{}:{}: row has no '{}' field", path, line_number, key);
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  HARDKV_THROW(kBadFile, "{}:{}: field '{}' must be a string or a number, got {}", path,
               line_number, key, it->type_name());
}

}  // namespace

std::vector<DatasetRow> load_dataset(const std::string& path) {
  std::vector<DatasetRow> rows;
  std::set<std::string> ids;
  for_each_json_line(path, [&](const nlohmann::json& row, int line_number) {
    DatasetRow r;
    r.id =
        row.contains("id") ? text_field(row, "id", path, line_number) : std::to_string(rows.size());
    r.problem = text_field(row, "problem", path, line_number);
    r.answer = text_field(row, "answer", path, line_number);
    HARDKV_CHECK(ids.insert(r.id).second, kBadFile, "{}:{}: id '{}' appears twice", path,
                 line_number, r.id);
    rows.push_back(std::move(r));
  });
  return rows;
}

std::vector<Response> load_responses(const std::string& path) {
  std::vector<Response> responses;
  for_each_json_line(path, [&](const nlohmann::json& row, int line_number) {
    responses.push_back(Response{text_field(row, "id", path, line_number),
                                 text_field(row, "text", path, line_number)});
  });
  return responses;
}

}  // namespace hardkv::eval
