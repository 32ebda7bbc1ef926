#pragma once
// The three document-level splits of the corpus.
namespace bkd {

enum class Split { Train, Val, Test };
const char* split_name(Split s);  // "train" | "val" | "test"

}  // namespace bkd
