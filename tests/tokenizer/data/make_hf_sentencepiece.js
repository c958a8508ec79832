// Regenerates hf_sentencepiece.json: a small SentencePiece-style BPE tokenizer.json (the Llama-2 /
// TinyLlama layout: Prepend("▁") + Replace(" " -> "▁") normalizer, no pre-tokenizer, <0xXX>
// byte fallback, fuse_unk, Replace/ByteFallback/Fuse/Strip decoder, TemplateProcessing with <s>),
// texts, and what HuggingFace tokenizers (npm binding of the Rust library) gives for them: ids with
// add_special_tokens, and the decoded text (all ids, skipping special tokens, and without the
// first id), also with a Metaspace decoder instead.
// Run here: npm install tokenizers@0.23.2 && node make_hf_sentencepiece.js
const {Tokenizer} = require('tokenizers');
const fs = require('fs');
const os = require('os');
const path = require('path');

const vocab = {'<unk>': 0, '<s>': 1, '</s>': 2};
for (let b = 0; b < 256; ++b) {
  vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = Object.keys(vocab).length;
}
for (const c of ['▁', ...'abcdefghijklmnopqrstuvwxyz', 'T', 'H', ',', '.', '!', 'é', '日']) {
  vocab[c] = Object.keys(vocab).length;
}
const merges = [['▁', 't'], ['h', 'e'], ['▁t', 'he'], ['▁', 'a'], ['i', 'n'], ['▁', 'w'],
                ['o', 'r'], ['▁w', 'or'], ['l', 'd'], ['▁wor', 'ld'], ['e', 'r'], ['▁', '▁']];
for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = Object.keys(vocab).length;
const added = ['<unk>', '<s>', '</s>'].map((content, id) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false,
  special: true}));
const tokenizer = {
  version: '1.0', truncation: null, padding: null, added_tokens: added,
  normalizer: {type: 'Sequence', normalizers: [
    {type: 'Prepend', prepend: '▁'},
    {type: 'Replace', pattern: {String: ' '}, content: '▁'}]},
  pre_tokenizer: null,
  post_processor: {type: 'TemplateProcessing',
    single: [{SpecialToken: {id: '<s>', type_id: 0}}, {Sequence: {id: 'A', type_id: 0}}],
    pair: [{SpecialToken: {id: '<s>', type_id: 0}}, {Sequence: {id: 'A', type_id: 0}},
           {SpecialToken: {id: '<s>', type_id: 1}}, {Sequence: {id: 'B', type_id: 1}}],
    special_tokens: {'<s>': {id: '<s>', ids: [1], tokens: ['<s>']}}},
  decoder: {type: 'Sequence', decoders: [
    {type: 'Replace', pattern: {String: '▁'}, content: ' '}, {type: 'ByteFallback'},
    {type: 'Fuse'}, {type: 'Strip', content: ' ', start: 1, stop: 0}]},
  model: {type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null,
          end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false,
          vocab, merges: merges.map(([a, b]) => a + ' ' + b)},
};
const texts = ['the world', 'The world', ' the  world ', 'hello, world!', 'café 日本 🦙',
  'a\tb\nc', '', ' ', 'in the winter', '<s>the</s> world', 'x<s>', 'Über', 'THE END.',
  'the  \u00a0 world', 'ééé', '🦙🦙', 'ąčę'];
(async () => {
  const file = path.join(os.tmpdir(), `hf_sentencepiece_${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify(tokenizer));
  const tok = Tokenizer.fromFile(file);
  const cases = [];
  for (const text of texts) {
    const enc = await tok.encode(text, null, {addSpecialTokens: true});
    const ids = Array.from(enc.getIds());
    cases.push({text, ids, decoded: await tok.decode(ids, false),
                decoded_skip_special: await tok.decode(ids, true),
                decoded_without_first: await tok.decode(ids.slice(1), false)});
  }
  const metaspace_decoder = {type: 'Metaspace', replacement: '▁', prepend_scheme: 'first',
                             split: false};
  fs.writeFileSync(file, JSON.stringify({...tokenizer, decoder: metaspace_decoder}));
  const meta = Tokenizer.fromFile(file);
  for (const c of cases) {
    c.metaspace_decoded = await meta.decode(c.ids, false);
    c.metaspace_decoded_skip_special = await meta.decode(c.ids, true);
    c.metaspace_decoded_without_first = await meta.decode(c.ids.slice(1), false);
  }
  fs.unlinkSync(file);
  fs.writeFileSync('hf_sentencepiece.json', JSON.stringify(
      {generator: 'make_hf_sentencepiece.js', reference: 'HuggingFace tokenizers 0.23.2 (npm)',
       tokenizer, metaspace_decoder, cases}) + '\n');
})();
