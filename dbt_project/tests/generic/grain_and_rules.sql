{#- One scan instead of a test per column: `key` is the grain (no NULL, no duplicate:
    count(distinct) skips NULLs, so both show as rows <> distinct keys) and every rule,
    a SQL condition, holds on every row (a rule that is NULL for a row fails it: write
    `x is null or …` where NULL is allowed). Fails with one row counting each breach. -#}
{% test grain_and_rules(model, key=none, rules={}) %}
with

breaches as (

    select
        {%- if key %}
        count(*) - count(distinct {{ key }}) as {{ key }}_not_a_key{{ "," if rules }}
        {%- endif %}
        {%- for name, rule in rules.items() %}
        count(case when not coalesce({{ rule }}, false) then 1 end) as {{ name }}_broken{{ "," if not loop.last }}
        {%- endfor %}

    from {{ model }}

)

select * from breaches
where
    {%- if key %} {{ key }}_not_a_key > 0{{ " or" if rules }}{% endif %}
    {%- for name in rules %} {{ name }}_broken > 0{{ " or" if not loop.last }}{% endfor %}
{% endtest %}
