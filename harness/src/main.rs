fn main() {
    println!("gapbench");
}
