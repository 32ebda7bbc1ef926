#pragma once
// Loads libbkd_spm once (dlopen with RTLD_LOCAL | RTLD_DEEPBIND) and exposes its C functions.
#include "spm_shim/spm_shim.h"

namespace bkd {

struct SpmModule {
  decltype(&bkd_spm_load) load;
  decltype(&bkd_spm_free) free;
  decltype(&bkd_spm_train) train;
  decltype(&bkd_spm_encode) encode;
  decltype(&bkd_spm_decode) decode;
  decltype(&bkd_spm_piece_size) piece_size;
  decltype(&bkd_spm_id_to_piece) id_to_piece;
  decltype(&bkd_spm_piece_to_id) piece_to_id;
  decltype(&bkd_spm_is_byte) is_byte;
  decltype(&bkd_spm_eos_id) eos_id;
  decltype(&bkd_spm_unk_id) unk_id;
  decltype(&bkd_spm_bos_id) bos_id;
  decltype(&bkd_spm_score) score;
  decltype(&bkd_spm_piece_type) piece_type;
  decltype(&bkd_spm_free_buffer) free_buffer;
};

// Throws Error (naming the places searched and how to fix it) when the module cannot be loaded.
const SpmModule& spm_module();

}  // namespace bkd
