//! Test support shared by bpfkit's tests, fuzz targets and benches: the data-driven filetest
//! format ([`filetest`]), the bpf_conformance corpus runner ([`conformance`]), and generators.
#![forbid(unsafe_code)]

pub mod conformance;
pub mod filetest;
pub mod fuzz;
