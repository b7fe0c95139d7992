{#- The declared levels of each category, in declared order (low to high when ordered),
    with their names in each report language. Categories declared without levels accept
    any value and have no rows: the report shows the value itself. -#}
{%- set text = dbt.type_string() -%}

with

declared as (

    {%- for column in mart_columns() if column.levels %}
    {%- set outer = loop %}
    {%- for level in column.levels %}
    select
        {{ sql_string(column.name) }} as feature,
        {{ sql_string(level.value) }} as level,
        {{ loop.index0 }} as position,
        {{ sql_string(level.label_en) }} as label_en,
        {{ sql_string(level.label_fr) }} as label_fr
    union all
    {%- endfor %}
    {%- endfor %}
    select 'none' as feature, 'none' as level, 0 as position, 'none' as label_en, 'none' as label_fr
    where false

),

final as (

    select
        cast(feature as {{ text }}) as feature,
        cast(level as {{ text }}) as level,
        cast(position as integer) as position,
        cast(label_en as {{ text }}) as label_en,
        cast(label_fr as {{ text }}) as label_fr

    from declared

)

select * from final
