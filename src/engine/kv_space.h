// KVSpace: what the scheduler asks of the KV memory of a mode — admission, growth by the tokens of
// a step, commit after a step, release. Dense mode: BlockManager; HARD-KV mode: HardKVSpace.
#pragma once

#include "engine/sequence.h"

namespace hardkv {

// Check-then-act pairs are exact (can_admit true iff admit succeeds, can_grow iff grow); a failing
// act throws kOutOfMemory and changes nothing. `num_new` / `max_new` are the tokens the step will
// run for the sequence (the scheduler's chunk); an implementation may reserve more.
class KVSpace {
 public:
  virtual ~KVSpace() = default;
  virtual int num_blocks() const = 0;  // pool size, in dense blocks
  virtual int block_size() const = 0;
  // Admission of a waiting sequence with no KV; sets num_computed_tokens (prefix cache hits).
  virtual bool can_admit(const Sequence& seq, int max_new) const = 0;
  virtual void admit(Sequence& seq, int max_new) = 0;
  // Room for the next num_new tokens of a running sequence.
  virtual bool can_grow(const Sequence& seq, int num_new) const = 0;
  virtual void grow(Sequence& seq, int num_new) = 0;
  // After a step advanced seq.num_computed_tokens.
  virtual void on_computed(Sequence& seq) = 0;
  virtual bool holds(const Sequence& seq) const = 0;
  // Drops everything the sequence holds; resets its computed-token counts.
  virtual void release(Sequence& seq) = 0;
};

}  // namespace hardkv
