// StopMatcher: stop strings split across pieces are caught, partial matches are held back and
// released when they turn out not to match, and multi-byte characters are never split.
#include <gtest/gtest.h>

#include "server/stop_matcher.h"

namespace moe::server {
namespace {

std::string feed(StopMatcher& m, const std::vector<std::string>& pieces, bool* stopped = nullptr) {
  std::string out;
  for (const std::string& p : pieces) {
    const StopMatcher::Output o = m.push(p);
    out += o.text;
    if (o.stopped) {
      if (stopped != nullptr) *stopped = true;
      return out;
    }
  }
  return out + m.flush();
}

TEST(StopMatcher, StopSplitAcrossPiecesIsCaught) {
  StopMatcher m({"END"});
  bool stopped = false;
  EXPECT_EQ(feed(m, {"abc E", "N", "D more"}, &stopped), "abc ");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcher, PartialMatchIsHeldThenReleased) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.push("abc EN").text, "abc ");
  EXPECT_EQ(m.push("x").text, "ENx");
  EXPECT_EQ(m.push("E").text, "");
  EXPECT_EQ(m.flush(), "E");
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  StopMatcher m({"world", "lo"});
  bool stopped = false;
  EXPECT_EQ(feed(m, {"hello world"}, &stopped), "hel");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcher, MultiByteCharactersStayWhole) {
  // "é" is C3 A9; the stop string starts with "é" so a held suffix starts at a character.
  StopMatcher m({"\xC3\xA9t\xC3\xA9"});
  StopMatcher::Output a = m.push("caf\xC3\xA9");
  EXPECT_EQ(a.text, "caf");
  StopMatcher::Output b = m.push(" \xE2\x9C\x93");
  EXPECT_EQ(b.text, "\xC3\xA9 \xE2\x9C\x93");
  EXPECT_FALSE(b.stopped);
}

TEST(StopMatcher, NoStopsPassesEverything) {
  StopMatcher m({});
  EXPECT_EQ(m.push("abc").text, "abc");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, NothingAfterAStop) {
  StopMatcher m({"x"});
  EXPECT_TRUE(m.push("ax").stopped);
  EXPECT_EQ(m.push("more").text, "");
  EXPECT_EQ(m.flush(), "");
}

}  // namespace
}  // namespace moe::server
