// Renders every real chat template in ../shared/testdata/templates with our engine and with
// Jinja2 itself (tests/tokenizer/jinja_reference.py, run through python3) for a set of
// conversations, and requires byte-identical output, or an error from both.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "jinja_reference.h"
#include "tokenizer/chat_template.h"

namespace moe::tokenizer {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;
using testing::reference_available;
using testing::ReferenceRender;

// A fixed strftime_now() time (2024-07-26 12:00:00 UTC) so both engines print the same date.
constexpr int64_t kFixedNow = 1721995200;

fs::path templates_dir() { return fs::path(MOE_TESTDATA_DIR) / "templates"; }

std::vector<std::string> template_names() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(templates_dir(), ec)) {
    if (entry.path().extension() == ".jinja") names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  // One placeholder keeps the suite instantiated; it skips with a message.
  if (names.empty()) names.push_back("no_templates_found");
  return names;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ordered_json weather_tools() {
  return ordered_json::parse(R"([{"type": "function", "function": {"name": "get_weather",
    "description": "Get the current weather for a city.", "parameters": {"type": "object",
    "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"},
    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}])");
}

struct Conversation {
  std::string name;
  ChatTemplateInputs inputs;
};

std::vector<Conversation> conversations(bool with_tools) {
  auto base = [](ordered_json messages, bool add_generation_prompt) {
    ChatTemplateInputs in;
    in.messages = std::move(messages);
    in.add_generation_prompt = add_generation_prompt;
    in.bos_token = "<s>";
    in.eos_token = "</s>";
    in.now_unix_seconds = kFixedNow;
    return in;
  };
  std::vector<Conversation> out;
  out.push_back({"system_user_assistant", base(ordered_json::parse(R"([
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello! Say hi in French — and 日本語?"},
    {"role": "assistant", "content": "Bonjour ! こんにちは"}])"), false)});
  out.push_back({"system_user_generation_prompt", base(ordered_json::parse(R"([
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is 2 + 2?"}])"), true)});
  out.push_back({"multi_turn", base(ordered_json::parse(R"([
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello! How can I help?", "reasoning_content": "The user greets me."},
    {"role": "user", "content": "Tell me a joke."},
    {"role": "assistant", "content": "  Why did the chicken cross the road?\n\nTo get to the other side.  "},
    {"role": "user", "content": "Another one, please."}])"), true)});
  if (with_tools) {
    ChatTemplateInputs in = base(ordered_json::parse(R"([
      {"role": "system", "content": "You are a helpful assistant with tools."},
      {"role": "user", "content": "What's the weather in Paris?"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
      {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "{\"temperature\": 22.5}"}])"),
                                 true);
    in.tools = weather_tools();
    out.push_back({"tool_call_and_result", in});
  }
  return out;
}

class ChatTemplateReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatTemplateReferenceTest, MatchesJinja2) {
  if (GetParam() == "no_templates_found") {
    GTEST_SKIP() << "no templates in " << templates_dir() << " (shared test data absent)";
  }
  if (!reference_available()) GTEST_SKIP() << "python3 with jinja2 not available (apt-get install python3-jinja2)";
  fs::path path = templates_dir() / GetParam();
  std::string source = read_file(path);
  bool with_tools = source.find("tools") != std::string::npos;
  for (const auto& conversation : conversations(with_tools)) {
    SCOPED_TRACE(conversation.name);
    ReferenceRender expected = testing::render_reference(path, build_chat_template_context(conversation.inputs), kFixedNow);
    Result<std::string> actual = render_chat_template(source, conversation.inputs);
    if (!expected.ok) {
      EXPECT_FALSE(actual.ok()) << "Jinja2 raised (" << expected.output << ") but we rendered:\n" << *actual;
      continue;
    }
    ASSERT_TRUE(actual.ok()) << actual.error().message;
    EXPECT_EQ(*actual, expected.output);
  }
}

INSTANTIATE_TEST_SUITE_P(RealTemplates, ChatTemplateReferenceTest, ::testing::ValuesIn(template_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace moe::tokenizer
