#pragma once
// C interface of libbkd_spm, the only code that links libsentencepiece.
//
// Why a separate, dlopen'ed module: Debian's libsentencepiece bundles its own (older) protobuf-lite and
// exports those symbols. In a process that also loads LibTorch (which needs libprotobuf.so), the two
// protobufs interpose on each other and the process crashes during start-up. Loading this module with
// RTLD_LOCAL | RTLD_DEEPBIND keeps sentencepiece's protobuf private to it.
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bkd_spm bkd_spm;

// All functions returning int return 0 on success; on failure they write a message into err.
bkd_spm* bkd_spm_load(const char* model, size_t model_len, char* err, size_t err_len);
void bkd_spm_free(bkd_spm* sp);
int bkd_spm_train(const char* const* sentences, size_t n_sentences, const char* const* keys, const char* const* values,
                  size_t n_kw, char** model_out, size_t* model_len, char* err, size_t err_len);
int bkd_spm_encode(const bkd_spm* sp, const char* text, size_t len, int32_t** ids, uint32_t** begins, uint32_t** ends,
                   size_t* count, char* err, size_t err_len);
int bkd_spm_decode(const bkd_spm* sp, const int32_t* ids, size_t n, char** text_out, size_t* text_len, char* err,
                   size_t err_len);
int bkd_spm_piece_size(const bkd_spm* sp);
const char* bkd_spm_id_to_piece(const bkd_spm* sp, int id);  // valid while sp lives
int bkd_spm_piece_to_id(const bkd_spm* sp, const char* piece);
int bkd_spm_is_byte(const bkd_spm* sp, int id);
int bkd_spm_eos_id(const bkd_spm* sp);
int bkd_spm_bos_id(const bkd_spm* sp);
float bkd_spm_score(const bkd_spm* sp, int id);
// 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte (the numbering of
// SentencePiece's ModelProto.SentencePiece.Type, as GGUF's tokenizer.ggml.token_type uses it).
int bkd_spm_piece_type(const bkd_spm* sp, int id);
int bkd_spm_unk_id(const bkd_spm* sp);
void bkd_spm_free_buffer(void* p);  // for every buffer the module allocated

#ifdef __cplusplus
}
#endif
