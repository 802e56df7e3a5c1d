//! Templates and outputs from AWS's documentation, and the engine's limits.

use std::borrow::Cow;

use indexmap::IndexMap;

use super::eval::EvalError;
use super::{Inputs, Template};
use crate::transform::value::Value;

fn run_with(t: &str, i: &Inputs<'_>) -> String {
    let t = Template::compile(t).unwrap_or_else(|e| panic!("{e}"));
    t.eval(i).unwrap().body
}

fn run(t: &str, body: &str) -> String {
    run_with(
        t,
        &Inputs {
            body: body.as_bytes(),
            ..Inputs::default()
        },
    )
}

const PETS: &str = r#"[
  {"id": 1, "type": "dog", "price": 249.99},
  {"id": 2, "type": "cat", "price": 124.99},
  {"id": 3, "type": "fish", "price": 0.99}
]"#;

#[test]
fn petstore_foreach_gives_awss_output() {
    let t = "#set($inputRoot = $input.path('$'))
[
#foreach($elem in $inputRoot)
  {
    \"number\": $elem.id,
    \"class\": \"$elem.type\",
    \"salesPrice\": $elem.price
  }#if($foreach.hasNext),#end

#end
]";
    let want = "[
  {
    \"number\": 1,
    \"class\": \"dog\",
    \"salesPrice\": 249.99
  },
  {
    \"number\": 2,
    \"class\": \"cat\",
    \"salesPrice\": 124.99
  },
  {
    \"number\": 3,
    \"class\": \"fish\",
    \"salesPrice\": 0.99
  }
]";
    assert_eq!(run(t, PETS), want);
}

#[test]
fn input_json_path_and_params() {
    let body = r#"{"name": "Fido", "tags": ["a", "b"], "n": 2}"#;
    let i = Inputs {
        body: body.as_bytes(),
        path: vec![("id", Cow::Borrowed("7"))],
        query: vec![(Cow::Borrowed("name"), Cow::Borrowed("q-name"))],
        headers: vec![("X-Trace", "t1"), ("Host", "example.com")],
        ..Inputs::default()
    };
    assert_eq!(
        run_with(
            r#"{"name": "$input.params('name')", "body": $input.json('$'), "id": "$input.params('id')", "h": "$input.params('x-trace')"}"#,
            &i
        ),
        r#"{"name": "q-name", "body": {"name":"Fido","tags":["a","b"],"n":2}, "id": "7", "h": "t1"}"#
    );
    assert_eq!(
        run_with(
            "$input.path('$.tags').size() $input.path('$.tags')[1] $input.json('$.tags')",
            &i
        ),
        r#"2 b ["a","b"]"#
    );
    assert_eq!(run_with("$input.path('$.name').toUpperCase()", &i), "FIDO");
    assert_eq!(run_with("$input.body", &i), body);
    // the documented walk over every parameter
    let t = "#set($allParams = $input.params())
{
  \"params\" : {
    #foreach($type in $allParams.keySet())
    #set($params = $allParams.get($type))
    \"$type\" : {
      #foreach($paramName in $params.keySet())
      \"$paramName\" : \"$util.escapeJavaScript($params.get($paramName))\"
      #if($foreach.hasNext),#end
      #end
    }
    #if($foreach.hasNext),#end
    #end
  }
}";
    let out = run_with(t, &i);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        v,
        serde_json::json!({"params": {"path": {"id": "7"}, "querystring": {"name": "q-name"},
            "header": {"X-Trace": "t1", "Host": "example.com"}}})
    );
}

#[test]
fn photos_example_reshapes_nested_arrays() {
    let body = r#"{"photos": {"page": 1, "pages": "1234", "perpage": 100, "total": "123398", "photo": [
      {"id": "12345678901", "owner": "23456789@A12", "photographer_first_name": "Saanvi", "photographer_last_name": "Sarkar",
       "secret": "abc123d456", "server": "1234", "farm": 1, "title": "Sample photo 1", "ispublic": true, "isfriend": false, "isfamily": false},
      {"id": "23456789012", "owner": "34567890@B23", "photographer_first_name": "Richard", "photographer_last_name": "Roe",
       "secret": "bcd234e567", "server": "1234", "farm": 1, "title": "Sample photo 2", "ispublic": true, "isfriend": false, "isfamily": false}]}}"#;
    let t = "#set($inputRoot = $input.path('$'))
{
  \"photos\": [
#foreach($elem in $inputRoot.photos.photo)
    {
      \"id\": \"$elem.id\",
      \"photographedBy\": \"$elem.photographer_first_name $elem.photographer_last_name\",
      \"title\": \"$elem.title\",
      \"ispublic\": $elem.ispublic,
      \"isfriend\": $elem.isfriend,
      \"isfamily\": $elem.isfamily
    }#if($foreach.hasNext),#end
\t\t
#end
  ]
}";
    let out = run(t, body);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        v,
        serde_json::json!({"photos": [
            {"id": "12345678901", "photographedBy": "Saanvi Sarkar", "title": "Sample photo 1", "ispublic": true, "isfriend": false, "isfamily": false},
            {"id": "23456789012", "photographedBy": "Richard Roe", "title": "Sample photo 2", "ispublic": true, "isfriend": false, "isfamily": false}]})
    );
}

#[test]
fn util_functions() {
    assert_eq!(
        run(
            r#"$util.escapeJavaScript("it's").replaceAll("\\'","'")|$util.urlEncode("a b")|$util.urlDecode("a+b%21")|$util.base64Encode("hi")|$util.base64Decode("aGk=")"#,
            ""
        ),
        "it's|a+b|a b!|aGk=|hi"
    );
    assert_eq!(
        run(
            "#set($m = $util.parseJson($input.path('$.errorMessage')))$m.code/$m.detail.size()",
            r#"{"errorMessage": "{\"code\": 42, \"detail\": [1, 2]}"}"#
        ),
        "42/2"
    );
}

#[test]
fn directives_and_references() {
    assert_eq!(
        run(
            "#set($a = 3)#if($a > 2)big#elseif($a == 2)two#{else}small#end",
            ""
        ),
        "big"
    );
    assert_eq!(
        run(
            "#set($a = 2)#if($a > 2)big#elseif($a == 2)two#{else}small#end",
            ""
        ),
        "two"
    );
    assert_eq!(
        run("#if(!$nope)none#end|$nope|$!nope|${nope}|$!{nope}", ""),
        "none|$nope||${nope}|"
    );
    assert_eq!(
        run("#foreach($i in [1..5])#if($i == 3)#break#end$i#end", ""),
        "12"
    );
    assert_eq!(run("a#stop b", ""), "a");
    assert_eq!(
        run(
            "#foreach($i in [3..1])$velocityCount:$i$foreach.index,#end",
            ""
        ),
        "1:30,2:21,3:12,"
    );
    assert_eq!(run("## a comment\nx #* block\ncomment *#y", ""), "x y");
    assert_eq!(
        run(
            "#set($m = {\"k\": \"v\"})$m.k $m['k'] $m.get('k')#set($m.k2 = 'w') $m",
            ""
        ),
        "v v v {k=v, k2=w}"
    );
    assert_eq!(
        run("#set($l = [])#set($ok = $l.add('x'))$l.size() $l[0] $l", ""),
        "1 x [x]"
    );
    assert_eq!(
        run("#set($s = \"a-$foo-b\")$s #set($x = 'lit $foo')$x", ""),
        "a-$foo-b lit $foo"
    );
    assert_eq!(
        run("\\$escaped and $ 5 and #notadirective", ""),
        "$escaped and $ 5 and #notadirective"
    );
    assert_eq!(
        run(
            "#set($n = 7)#set($q = $n / 2)$q $n % 3 #set($f = $n * 1.5)$f",
            ""
        ),
        "3 7 % 3 10.5"
    );
    assert_eq!(run("#set($s = 'a,b,,c,,')$s.split(',').size() $s.substring(2, 3) $s.length() $s.indexOf('c')", ""), "4 b 8 5");
    assert_eq!(run("#set($s='Hello World')$s.replaceAll('(\\w+) (\\w+)', '$2 $1') $s.matches('H.*d') $s.contains('lo W')", ""), "World Hello true true");
    // Velocity 1.7: a null right-hand side keeps the old value
    assert_eq!(
        run("#set($a = 1)#set($a = $input.path('$.missing'))$a", "{}"),
        "1"
    );
    // a directive alone on its line leaves no trace; an inline one keeps its text
    assert_eq!(run("x\n  #set($a = 1)\ny #if(true)z#end\n", ""), "x\ny z");
}

#[test]
fn context_and_stage_variables_come_from_the_caller() {
    let mut ctx = IndexMap::new();
    ctx.insert("requestId".into(), Value::str("r-1"));
    let mut claims = IndexMap::new();
    claims.insert("email".into(), Value::str("a@example.com"));
    let mut auth = IndexMap::new();
    auth.insert("claims".into(), Value::new_map(claims));
    ctx.insert("authorizer".into(), Value::new_map(auth));
    let mut sv = IndexMap::new();
    sv.insert("env".into(), Value::str("prod"));
    let i = Inputs {
        context: Value::new_map(ctx),
        stage_variables: Value::new_map(sv),
        ..Inputs::default()
    };
    assert_eq!(
        run_with("$context.requestId $context.authorizer.claims.email [$context.authorizer.claims.missing] $stageVariables.env ${stageVariables['env']}", &i),
        "r-1 a@example.com [] prod prod"
    );
    let t = Template::compile("$context.x").unwrap();
    assert!(t.uses_context);
    assert!(!Template::compile("$input.body").unwrap().uses_context);
}

#[test]
fn compile_errors_say_where() {
    for (t, line, column) in [
        ("#if($a)\nno end", 1, 1),
        ("ok\n  #set($a 1)", 2, 11),
        ("#foreach($a on $b)#end", 1, 13),
        ("x\n$input.path('$.[')", 2, 19),
        ("#end", 1, 1),
        ("#macro(m)#end", 1, 1),
        ("$a.replaceAll('(?=x)', '')", 1, 27),
        ("#set($a = \"unterminated)", 1, 11),
    ] {
        let e = Template::compile(t).expect_err(t);
        assert_eq!((e.line, e.column), (line, column), "{t}: {e}");
    }
}

#[test]
fn limits_bound_every_template() {
    // 1,000 iterations per loop, then the rest is skipped
    let t = Template::compile("#foreach($i in [1..5000])x#end").unwrap();
    assert_eq!(t.eval(&Inputs::default()).unwrap().body.len(), 1000);
    // nested loops run into the step budget instead of running for hours
    let t = Template::compile(
        "#foreach($a in [1..1000])#foreach($b in [1..1000])#foreach($c in [1..1000])#end#end#end",
    )
    .unwrap();
    assert_eq!(
        t.eval(&Inputs::default()).unwrap_err(),
        EvalError::TooManySteps
    );
    // doubling a string runs into the byte budget
    let t = Template::compile(
        "#set($s = 'xxxxxxxxxxxxxxxx')#foreach($i in [1..100])#set($s = \"$s$s\")#end",
    )
    .unwrap();
    assert_eq!(t.eval(&Inputs::default()).unwrap_err(), EvalError::TooLarge);
    // a list that holds itself is refused (it would never end printing, nor be freed)
    for t in [
        "#set($a = [])#set($x = $a.add($a))$a",
        "#set($m = {})#set($x = $m.put('self', $m))$m",
        "#set($m = {})#set($m.self = $m)$m",
        "#set($a = [1])#set($b = [$a])#set($x = $a.add($b))$a",
    ] {
        let t = Template::compile(t).unwrap();
        assert_eq!(t.eval(&Inputs::default()).unwrap_err(), EvalError::TooLarge);
    }
    // a list of itself doubled 60 times is quick to build and refused when printed
    let t = Template::compile("#set($a = [1, 2])#foreach($i in [1..60])#set($a = [$a, $a])#end$a")
        .unwrap();
    assert!(t.eval(&Inputs::default()).is_err());
    // and compared element by element within the step budget
    let t = Template::compile("#set($a = [1])#set($b = [1])#foreach($i in [1..60])#set($a = [$a, $a])#set($b = [$b, $b])#end#if($a == $b)same#end").unwrap();
    assert!(t.eval(&Inputs::default()).is_err());
    // wrapping a list in itself 1,000 times stops at the nesting limit
    let t = Template::compile("#set($l = [])#foreach($i in [1..1000])#set($l = [$l])#end").unwrap();
    assert_eq!(t.eval(&Inputs::default()).unwrap_err(), EvalError::TooLarge);
    // deep nesting is a compile error, not a stack overflow
    let deep = "#if(true)".repeat(200);
    assert!(Template::compile(&deep).is_err());
    let deep = format!("#set($a = {}1{})", "(".repeat(500), ")".repeat(500));
    assert!(Template::compile(&deep).is_err());
}
