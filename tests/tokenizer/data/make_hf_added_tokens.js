// Regenerates hf_added_tokens.json: a small byte-level BPE tokenizer.json whose added tokens use
// lstrip, rstrip, single_word and normalized (with an NFC normalizer), texts that exercise them,
// and the ids HuggingFace tokenizers (npm binding of the Rust library) gives. Run here:
//   npm install tokenizers@0.23.2 && node make_hf_added_tokens.js
const {Tokenizer} = require('tokenizers');
const fs = require('fs');
const os = require('os');
const path = require('path');

// GPT-2 bytes_to_unicode.
const byteChar = [];
{
  let n = 0;
  for (let b = 0; b < 256; ++b) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    byteChar.push(String.fromCodePoint(printable ? b : 256 + n++));
  }
}
const vocab = {};
byteChar.forEach((c, b) => { vocab[c] = b; });
const merges = [['h', 'e'], ['l', 'l'], ['he', 'll'], ['hell', 'o'], ['Ġ', 'w'], ['o', 'r'],
                ['Ġw', 'or'], ['Ġ', 'Ġ']];
for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = Object.keys(vocab).length;
const added = [];
function add(content, {special = true, lstrip = false, rstrip = false, single_word = false,
                       normalized = false} = {}) {
  added.push({id: Object.keys(vocab).length + added.length, content, single_word, lstrip, rstrip,
              normalized, special});
}
add('<m>', {lstrip: true, rstrip: true});
add('<l>', {lstrip: true});
add('<r>', {rstrip: true});
add('word', {special: false, single_word: true});
add('<sw>', {single_word: true});
add('été', {special: false, normalized: true});
add('<x>', {special: false});
add('<x>y', {special: false});
const byteLevel = {type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false};
const tokenizer = {
  version: '1.0', truncation: null, padding: null, added_tokens: added,
  normalizer: {type: 'NFC'},
  pre_tokenizer: {type: 'Sequence', pretokenizers: [
    {type: 'Split', pattern: {Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     behavior: 'Isolated', invert: false},
    byteLevel]},
  post_processor: null, decoder: byteLevel,
  model: {type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '',
          end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false,
          vocab, merges: merges.map(([a, b]) => a + ' ' + b)},
};
const texts = ['a  <m>  b', 'a \t<l>  b', 'a<r>  b', ' <r>\n\nx', '<m>', '  <m>',
  '<l><l>  <r>  <r>', 'word', 'a word b', 'aword', 'wordb', '_word', 'word_', 'a,word.', 'éword',
  '1word', '٣word', '<sw>', 'a<sw>b', 'a <sw> b', 'x<sw>', 'ete\u0301', 'été', 'e\u0301te\u0301x',
  '<x>y <x>', '<x><x>y', 'hello<m>world', '\u00a0<m>\u00a0', '\u3000<l>', 'word word',
  'wordword', 'wo<x>rd'];
(async () => {
  const file = path.join(os.tmpdir(), `hf_added_tokens_${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify(tokenizer));
  const tok = Tokenizer.fromFile(file);
  const cases = [];
  for (const text of texts) {
    const enc = await tok.encode(text, null, {addSpecialTokens: false});
    cases.push({text, ids: Array.from(enc.getIds())});
  }
  fs.unlinkSync(file);
  fs.writeFileSync('hf_added_tokens.json', JSON.stringify(
      {generator: 'make_hf_added_tokens.js', reference: 'HuggingFace tokenizers 0.23.2 (npm)',
       tokenizer, cases}) + '\n');
})();
