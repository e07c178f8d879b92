exports.greeting = () => "hello from the sample backend";
