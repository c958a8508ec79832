// Regenerates hf_tokenizers_stress.json: seeded random texts (many scripts, whitespace kinds,
// digits, contractions, combining marks, emoji, special-token look-alikes) and the ids that
// HuggingFace tokenizers (the npm binding of the Rust library) gives for them with the Qwen3 and
// Llama-3 tokenizer.json files from tools/fetch-test-assets.sh. Run from this directory:
//   npm install tokenizers@0.23.2 && node make_hf_stress.js "$(bash ../../../tools/fetch-test-assets.sh)"
const {Tokenizer} = require('tokenizers');
const fs = require('fs');

const assets = process.argv[2];
let state = 12345;
function rand() {  // mulberry32
  state = (state + 0x6D2B79F5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const fragments = [
  'Hello', ' world', "don't", "I'M", "we'll", "'s", "'S", "'Ll", " 's", '\n', '\r\n', '\t', ' ',
  '  ', '   ', '\u00a0', '\u2009', '\u3000', '\u0085', '\u000b', '\u000c', '\u2028', '123',
  '4567890', '٣٤٥', '３４', '½', '²', 'Ⅻ', '!!', '...', '?!', '->', '{}', '();', '“quoted”', '—',
  '…', '<|im_start|>', '<|im_end|>', '<think>', '</think>', '<|endoftext|>', '<|begin_of_text|>',
  '<|eot_id|>', '<|im_st', '<|', '|>', 'e\u0301', 'a\u0308', '\u1100\u1161', '한국어', '日本語',
  '我想在', 'ไทย', 'हिन्दी', 'العربية', 'עברית', 'Ελληνικά', 'ქართული', 'ខ្មែរ', '🦙',
  '😶‍🌫️', '👍🏽', '🇫🇷', '✅', '\ufe0f', '\u200d', '\u200b', 'ﬁ', 'Å', 'ǅ', 'ß', 'İ', 'ſ', 'K'];
const ranges = [[0x20, 0x7e], [0xa0, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff],
  [0x590, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f],
  [0x2100, 0x22ff], [0x3000, 0x30ff], [0x4e00, 0x4fff], [0xac00, 0xad00], [0xff00, 0xffef],
  [0x1f300, 0x1f6ff], [0x10000, 0x1007f], [0x1d400, 0x1d4ff]];
function randomChar() {
  const [a, b] = pick(ranges);
  return String.fromCodePoint(a + Math.floor(rand() * (b - a + 1)));
}
const texts = [];
for (let i = 0; i < 600; ++i) {
  let s = '';
  const n = 1 + Math.floor(rand() * 10);
  for (let k = 0; k < n; ++k) {
    if (rand() < 0.6) {
      s += pick(fragments);
    } else {
      const len = 1 + Math.floor(rand() * 5);
      for (let c = 0; c < len; ++c) s += randomChar();
    }
  }
  texts.push(s);
}
(async () => {
  const cases = texts.map((text) => ({text}));
  for (const name of ['qwen3', 'llama3']) {
    const tok = Tokenizer.fromFile(`${assets}/tokenizers/${name}/tokenizer.json`);
    for (const c of cases) {
      const enc = await tok.encode(c.text, null, {addSpecialTokens: false});
      c[name] = Array.from(enc.getIds());
    }
  }
  const out = {generator: 'make_hf_stress.js', reference: 'HuggingFace tokenizers 0.23.2 (npm)',
               cases};
  fs.writeFileSync('hf_tokenizers_stress.json', JSON.stringify(out, null, 0) + '\n');
})();
