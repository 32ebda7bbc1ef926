# BKD_TORCH_FROM_PYTHON=ON: find LibTorch inside the Python torch package (as on Colab, where it is
# the CUDA build) and check that it can link with the Debian/Ubuntu C++ libraries the project uses.
# Torch_DIR or CMAKE_PREFIX_PATH given on the command line still win.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
execute_process(
  COMMAND ${Python3_EXECUTABLE} -c
          "import torch; print(torch.utils.cmake_prefix_path); print(int(torch._C._GLIBCXX_USE_CXX11_ABI)); print(torch.__version__)"
  OUTPUT_VARIABLE _bkd_torch_out ERROR_VARIABLE _bkd_torch_err RESULT_VARIABLE _bkd_torch_rc
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _bkd_torch_rc EQUAL 0)
  message(FATAL_ERROR "BKD_TORCH_FROM_PYTHON=ON, but '${Python3_EXECUTABLE} -c \"import torch\"' failed:\n"
                      "${_bkd_torch_err}\nInstall torch for that Python (pip install torch), pass "
                      "-DPython3_EXECUTABLE=<python with torch>, or build with Debian's LibTorch "
                      "(BKD_TORCH_FROM_PYTHON=OFF, apt-get install libtorch-dev).")
endif()
string(REPLACE "\n" ";" _bkd_torch_lines "${_bkd_torch_out}")
list(GET _bkd_torch_lines 0 _bkd_torch_prefix)
list(GET _bkd_torch_lines 1 _bkd_torch_abi)
list(GET _bkd_torch_lines 2 _bkd_torch_version)
if(NOT EXISTS "${_bkd_torch_prefix}/Torch/TorchConfig.cmake")
  message(FATAL_ERROR "torch ${_bkd_torch_version} from ${Python3_EXECUTABLE} ships no CMake files "
                      "(${_bkd_torch_prefix}/Torch/TorchConfig.cmake is missing). Use the pip wheel of torch, "
                      "or Debian's LibTorch with BKD_TORCH_FROM_PYTHON=OFF.")
endif()
if(_bkd_torch_abi STREQUAL "0")
  message(FATAL_ERROR "torch ${_bkd_torch_version} is built with the pre-C++11 std::string ABI, but the system "
                      "C++ libraries this project links (SentencePiece, CLI11, GoogleTest) use the C++11 ABI. "
                      "Install a torch wheel built with the C++11 ABI (pip install -U torch; wheels from 2.7 on are), "
                      "or use Debian's LibTorch (BKD_TORCH_FROM_PYTHON=OFF).")
endif()
list(PREPEND CMAKE_PREFIX_PATH "${_bkd_torch_prefix}")
message(STATUS "LibTorch from Python torch ${_bkd_torch_version}: ${_bkd_torch_prefix}")
