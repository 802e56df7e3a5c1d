//! Mapping templates and models, the work a non-proxy route adds per request:
//! compiling AWS's PetStore template (load time), evaluating it over the three
//! pets and over a 100 KiB array, `$input.json('$')` of a 100 KiB body, and a
//! draft-4 model validating a typical order.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use turnpike::transform::models::Model;
use turnpike::transform::vtl::{Inputs, Template};

const PETSTORE: &str = r#"#set($inputRoot = $input.path('$'))
[
#foreach($elem in $inputRoot)
  {
    "number": $elem.id,
    "class": "$elem.type",
    "salesPrice": $elem.price
  }#if($foreach.hasNext),#end

#end
]"#;

fn bench(c: &mut Criterion) {
    let pets = br#"[{"id": 1, "type": "dog", "price": 249.99},
                    {"id": 2, "type": "cat", "price": 124.99},
                    {"id": 3, "type": "fish", "price": 0.99}]"#;
    // ~100 KiB: 1,000 pets (the loop's limit), padded with a description each
    let mut big = String::from("[");
    for i in 0..1000 {
        if i > 0 {
            big.push(',');
        }
        big.push_str(&format!(
            r#"{{"id": {i}, "type": "dog", "price": {}.5, "about": "{}"}}"#,
            i % 300,
            "x".repeat(40)
        ));
    }
    big.push(']');
    let t = Template::compile(PETSTORE).unwrap();
    let json_all =
        Template::compile(r#"{"body": $input.json('$'), "id": "$input.params('id')"}"#).unwrap();

    c.bench_function("vtl compile petstore", |b| {
        b.iter(|| Template::compile(black_box(PETSTORE)).unwrap())
    });
    c.bench_function("vtl eval petstore 3 pets", |b| {
        b.iter(|| {
            let i = Inputs {
                body: black_box(pets),
                ..Inputs::default()
            };
            t.eval(&i).unwrap()
        })
    });
    c.bench_function("vtl eval petstore 100 KiB", |b| {
        b.iter(|| {
            let i = Inputs {
                body: black_box(big.as_bytes()),
                ..Inputs::default()
            };
            t.eval(&i).unwrap()
        })
    });
    c.bench_function("vtl eval input.json 100 KiB", |b| {
        b.iter(|| {
            let i = Inputs {
                body: black_box(big.as_bytes()),
                path: vec![("id", "7".into())],
                ..Inputs::default()
            };
            json_all.eval(&i).unwrap()
        })
    });
    let model = Model::compile(
        "Order",
        r#"{"type": "object", "required": ["item", "qty"], "additionalProperties": false,
            "properties": {"item": {"type": "string", "minLength": 1}, "qty": {"type": "integer", "minimum": 1},
                           "note": {"type": "string", "maxLength": 200},
                           "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10}}}"#,
    )
    .unwrap();
    let order =
        br#"{"item": "tea", "qty": 3, "note": "leave at the door", "tags": ["gift", "fragile"]}"#;
    c.bench_function("model validate order", |b| {
        b.iter(|| model.check(black_box(order)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
