// The built-in SPM vocabulary for models written without a vocabulary file. Layout (ids):
//   0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then "▁", printable ASCII, then pieces.
// Scores follow SentencePiece-BPE convention: a piece's score is minus its merge rank, so
// pieces listed earlier merge first. Every prefix of a piece is itself a piece, so the
// left-to-right merges that build a word always find their intermediate tokens.
#include <algorithm>
#include <set>

#include "tokenizer/vocab.h"

namespace moe::tokenizer {
namespace {

constexpr std::string_view kSpaceMarker = "\xe2\x96\x81";  // U+2581 "▁"

// Frequent English subwords (no leading space), in rough order of frequency.
constexpr std::string_view kSubwords =
    "in er on an re at en or es ed ing is it al ar le ou ion st as ic th he ent ro ve de ly "
    "ter ation ers ll us ity ment ies ness able tion ous ive ers ful less est ence ance ally "
    "ated ting ize ial ical ure ory ists age ship ward self";

// Frequent English words; each also becomes "▁word" (a word after a space).
constexpr std::string_view kWords =
    "the of and to a in is that for it as was with be by on not he I this are or his from at "
    "which but have an they you were her she there one all we their been has would when who "
    "will more if no out so said what up its about into than them can only other new some "
    "could time these two may then do first any my now such like our over man me even most "
    "made after also did many before must through back years where much your way well down "
    "should because each just those people how too little state good very make world still "
    "own see men work long get here between both life being under never day same another know "
    "while last might us great old year off come since against go came right used take three "
    "himself few house use during without again place around however home small found "
    "thought went say part once general high upon school every does got united left number "
    "course war until always away something fact though water less public put think almost "
    "hand enough far took head yet government system better set told nothing night end why "
    "called didn eyes find going look asked later knew point next program city business give "
    "group toward young days let room president side social given present several order "
    "national second possible rather per face among form important often things looked early "
    "white case John become large big need four within felt along children saw best church "
    "ever least power development light thing seemed family interest want members mind "
    "country area others done turned although open God service certain kind problem began "
    "different door thus help sense means whole matter perhaps itself York times law human "
    "line above name example action company hands local show whether five history gave today "
    "either act feet across taken past quite anything seen having death experience body word "
    "half really field am car words already information tell together college shall money "
    "period held keep sure free seems real behind cannot miss political air question making "
    "office brought whose special heard major problems ago became federal moment study "
    "available known result street economic boy position reason change south board individual "
    "job areas society west close turn love community true court force full seem am The A In "
    "It He This That We They And But If What When There She You I'm it's don't Hello hello "
    "world model token text data code function return value error file test";

std::vector<std::string_view> split_words(std::string_view list) {
  std::vector<std::string_view> words;
  size_t pos = 0;
  while (pos < list.size()) {
    const size_t end = std::min(list.find(' ', pos), list.size());
    if (end > pos) words.push_back(list.substr(pos, end - pos));
    pos = end + 1;
  }
  return words;
}

// Collects multi-character pieces in merge order, each preceded by its prefixes.
class PieceList {
 public:
  void add_with_prefixes(const std::string& piece) {
    // Prefixes are whole pieces: "▁" is one character, so start after it.
    const size_t first =
        piece.compare(0, kSpaceMarker.size(), kSpaceMarker) == 0 ? kSpaceMarker.size() + 1 : 2;
    for (size_t n = first; n <= piece.size(); ++n) add(piece.substr(0, n));
  }
  const std::vector<std::string>& pieces() const { return pieces_; }

 private:
  void add(const std::string& piece) {
    if (seen_.insert(piece).second) pieces_.push_back(piece);
  }
  std::set<std::string> seen_;
  std::vector<std::string> pieces_;
};

void add_token(VocabData& data, std::string text, float score, TokenType type) {
  data.tokens.push_back(std::move(text));
  data.scores.push_back(score);
  data.token_types.push_back(static_cast<int32_t>(type));
}

std::string byte_text(int byte) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  return std::string{'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>'};
}

}  // namespace

VocabData builtin_byte_vocab() {
  VocabData data;
  data.model = "llama";
  data.name = "moe-builtin";
  add_token(data, "<unk>", 0.0f, TokenType::kUnknown);
  add_token(data, "<s>", 0.0f, TokenType::kControl);
  add_token(data, "</s>", 0.0f, TokenType::kControl);
  for (int byte = 0; byte < 256; ++byte) add_token(data, byte_text(byte), 0.0f, TokenType::kByte);
  // Single characters are never the result of a merge, so their score does not matter.
  add_token(data, std::string(kSpaceMarker), 0.0f, TokenType::kNormal);
  for (char c = '!'; c <= '~'; ++c) add_token(data, std::string(1, c), 0.0f, TokenType::kNormal);

  PieceList pieces;
  for (std::string_view word : split_words(kSubwords)) pieces.add_with_prefixes(std::string(word));
  for (std::string_view word : split_words(kWords)) {
    pieces.add_with_prefixes(std::string(kSpaceMarker) + std::string(word));
  }
  float rank = 0.0f;
  for (const std::string& piece : pieces.pieces()) {
    // A single ASCII character reached as a "prefix" is already in the vocabulary.
    if (piece.size() == 1) continue;
    add_token(data, piece, -rank, TokenType::kNormal);
    rank += 1.0f;
  }
  data.bos_id = 1;
  data.eos_id = 2;
  data.unk_id = 0;
  data.add_bos = true;
  data.add_eos = false;
  data.add_space_prefix = true;
  return data;
}

}  // namespace moe::tokenizer
