use recount::aggregate;
use std::marker::PhantomData;

#[derive(Default)]
struct Story<T> {
    title: String,
    kind: PhantomData<T>,
}

#[aggregate(category = "story", error = std::fmt::Error)]
impl<T> Story<T> {
    #[event]
    fn renamed(&mut self, title: String) {
        self.title = title;
    }
}

fn main() {}
