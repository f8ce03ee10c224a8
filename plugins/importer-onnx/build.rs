//! Compiles the vendored ONNX schema into Rust types (prost), without a `protoc` binary.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["onnx/onnx-ml.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed=proto/{f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
