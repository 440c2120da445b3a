// Stop strings over streamed text: text that could be the start of a stop string is held back
// until the next pieces decide, so a stop string split across tokens is still caught and never
// partly sent. Pieces are whole UTF-8 characters (runtime Detokenizer), and a held-back suffix
// starts where a stop string starts (a character boundary), so output is never cut mid-UTF-8.
#pragma once

#include <string>
#include <vector>

namespace moe::server {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  struct Output {
    std::string text;      // safe to send now
    bool stopped = false;  // a stop string was found; `text` is everything before it
  };

  // Adds a piece of generated text.
  Output push(const std::string& piece);
  // Returns the held-back text when generation ends without a stop string.
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace moe::server
