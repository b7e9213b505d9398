// sqlx::migrate! embeds the files at compile time; a new migration must trigger a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
