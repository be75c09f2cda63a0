-- One good entry point and one of each problem an entry point can have.
function register()
  return { "good", "missing", "not_a_function", "bad_priority", "bad_options", "no_ref", "no_type", "boom", "bad_schedule", "dup" }
end

not_a_function = 42

function good(p)
  if p == nil then
    return { ref = "mixed_good", triggerType = "POST_CREATE", triggerOptions = { "SERVER" }, api = "TRIGGER", version = 1 }
  end
  return { exitState = "SUCCESS" }
end

function bad_priority(p)
  if p == nil then
    return { ref = "bad_priority", priority = "high", triggerType = "POST_CREATE", triggerOptions = { "SERVER" } }
  end
end

function bad_options(p)
  if p == nil then
    return { ref = "bad_options", triggerType = "POST_CREATE", triggerOptions = "SERVER" }
  end
end

function no_ref(p)
  if p == nil then
    return { name = "No ref", triggerType = "POST_CREATE", triggerOptions = { "SERVER" } }
  end
end

function no_type(p)
  if p == nil then
    return { ref = "no_type", triggerOptions = { "SERVER" } }
  end
end

function boom(p)
  if p == nil then
    error("cannot describe myself")
  end
end

function bad_schedule(p)
  if p == nil then
    return { ref = "bad_schedule", triggerType = "SCHEDULED", schedule = { frequency = { FORTNIGHT = 1 } } }
  end
end

function dup(p)
  if p == nil then
    return { ref = "mixed_good", triggerType = "POST_CREATE", triggerOptions = { "SERVER" } }
  end
end
