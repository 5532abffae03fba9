use armature_realtime::prelude::*;

#[derive(Clone, Default)]
struct NotAService;

#[controller("/x")]
struct C {
    service: NotAService,
}

#[injectable]
#[derive(Clone)]
struct NoDefault {
    n: u32,
}

fn main() {}
