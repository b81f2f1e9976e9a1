fn main() {
    println!("estreamer-cef {}", env!("CARGO_PKG_VERSION"));
}
